#!/bin/bash
#$ -N wrun-q
#$ -S /bin/bash
#$ -V
#$ -l h_rt=1:30:00
#$ -j y
#$ -o /home/alice/.wrun/broker/alloc/q/
exec '/opt/wrun/bin/wrun' node --connect 'tcp://10.0.0.1:7878' --key '/home/alice/it'\''s/cluster.key' --slots 4 --lifetime 5400s --idle-timeout 300s --allocation "$JOB_ID" --name "wrun-q-$JOB_ID"
