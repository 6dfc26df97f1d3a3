#!/usr/bin/env bash
# Event-loop delay of a mount process, and `ls -l` latency, while `cat` reads big files through the mount.
#   loop-delay.sh WORKDIR WORKERS
# WORKDIR holds repo/ (passphrase "pw", its archive "a" holding text2.txt and huge.bin), config/, cache/
# and an empty mnt/. WORKERS 0 opens chunks on the main thread. Run from the project root after a build.
W=$1; WORKERS=$2
export CAIRN_PASSPHRASE=pw CAIRN_CACHE_DIR=$W/cache CAIRN_CONFIG_DIR=$W/config
coproc SRV { node --import=./node_modules/@tapjs/typescript/dist/esm/import.mjs test/fuse/fixtures-mount/loop-delay-server.ts $W/repo $W/mnt $WORKERS; }
read -r line <&${SRV[0]}; echo "server: $line"
echo reset >&${SRV[1]}; read -r line <&${SRV[0]}
start=$(date +%s%N)
( timeout 120 cat $W/mnt/a/text2.txt > /dev/null; timeout 120 cat $W/mnt/a/huge.bin >/dev/null ) &
catpid=$!
lat=()
while kill -0 $catpid 2>/dev/null; do
  t0=$(date +%s%N); timeout 10 ls -l $W/mnt/a >/dev/null; t1=$(date +%s%N)
  lat+=($(( (t1-t0)/1000 )))
  sleep 0.02
done
end=$(date +%s%N)
echo "cat of 560 MB took $(( (end-start)/1000000 )) ms"
printf '%s\n' "${lat[@]}" | sort -n | awk '{a[NR]=$1} END {print "ls -l latency us: n=" NR " p50=" a[int(NR*0.5)] " p90=" a[int(NR*0.9)] " p99=" a[int(NR*0.99)] " max=" a[NR]}'
echo unmount >&${SRV[1]}
while read -r line <&${SRV[0]}; do echo "server: $line"; done
