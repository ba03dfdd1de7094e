#include <stdio.h>
#include <time.h>
#include <immintrin.h>
int main(void){
  __m512 a[12]; __m512 x=_mm512_set1_ps(1.0000001f), y=_mm512_set1_ps(0.999999f);
  for(int i=0;i<12;i++) a[i]=_mm512_set1_ps((float)i);
  struct timespec t0,t1; clock_gettime(CLOCK_PROCESS_CPUTIME_ID,&t0);
  long N=100000000;
  for(long n=0;n<N;n++){
    _Pragma("GCC unroll 12") for(int i=0;i<12;i++) a[i]=_mm512_fmadd_ps(a[i],x,y);
  }
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID,&t1);
  double s=(t1.tv_sec-t0.tv_sec)+1e-9*(t1.tv_nsec-t0.tv_nsec);
  float sum=0; for(int i=0;i<12;i++) sum+=_mm512_reduce_add_ps(a[i]);
  printf("%.3f G FMA/s (%g)\n", 12.0*N/s/1e9, sum);
  // latency
  __m512 c=a[0]; clock_gettime(CLOCK_PROCESS_CPUTIME_ID,&t0);
  for(long n=0;n<N;n++) c=_mm512_fmadd_ps(c,x,y);
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID,&t1);
  s=(t1.tv_sec-t0.tv_sec)+1e-9*(t1.tv_nsec-t0.tv_nsec);
  printf("latency %.3f ns per FMA (%g)\n", s/N*1e9, _mm512_reduce_add_ps(c));
}
