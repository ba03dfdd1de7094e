/* Cost of one ml_pool_run hand-over: us per run of n_items items of item_us
 * busy-wait each, with gap_us of caller work between runs (results in
 * docs/results.md, issue 17 round 2). Build from the worktree:
 * gcc -O2 -std=c11 -D_GNU_SOURCE -Iinclude -o /tmp/pool_handover bench/results/sine17/pool_handover.c \
 *   build/libmetalearn.a -ldnnl -lcjson -lz -lspng -lzip -fopenmp -lpthread -lm -ldl
 * Usage: pool_handover THREADS N_ITEMS ITEM_US GAP_US REPS */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "metalearn/pool.h"
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+1e-9*t.tv_nsec;}
static volatile float sink;
static void spin_work(double us){double t0=now();while(now()-t0<us*1e-6){}}
static void item(int i,int w,void*u){(void)i;(void)w;double us=*(double*)u; if(us>0) spin_work(us);}
int main(int argc,char**argv){
  int threads=atoi(argv[1]); int n_items=atoi(argv[2]); double item_us=atof(argv[3]); double gap_us=atof(argv[4]); int reps=atoi(argv[5]);
  ml_pool*p=ml_pool_create(threads);
  double t0=now();
  for(int r=0;r<reps;r++){ ml_pool_run(p,n_items,item,&item_us); if(gap_us>0) spin_work(gap_us);}
  double t=(now()-t0)/reps*1e6;
  double ideal=gap_us+item_us*((n_items+threads-1)/threads);
  printf("{\"threads\":%d,\"items\":%d,\"item_us\":%g,\"gap_us\":%g,\"us_per_run\":%.3f,\"ideal_us\":%.3f,\"overhead_us\":%.3f}\n",threads,n_items,item_us,gap_us,t,ideal,t-ideal);
  ml_pool_destroy(p);
}
