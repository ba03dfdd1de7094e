/* progress.h: drawing the library's progress reports (ml_progress) on
 * stderr: a bar redrawn in place on a terminal, otherwise a line at every
 * 10% or every 30 s, so logs stay short and JSON on stdout stays clean. */
#ifndef ML_CLI_PROGRESS_H
#define ML_CLI_PROGRESS_H

#include <stdio.h>

#include "metalearn/core.h"

typedef struct cli_progress {
    FILE *out;         /* stderr, or NULL when quiet */
    int tty;           /* redraw a bar in place */
    double t0, last_t; /* start, last line printed */
    int last_tenth;    /* last 10% step printed (lines mode) */
    int open_line;     /* a bar is on screen without its newline */
} cli_progress;

/* An ml_progress drawing into p (nothing at all when quiet). */
ml_progress cli_progress_start(cli_progress *p, int quiet);
/* Ends a bar left open (an error came before the last report). */
void cli_progress_end(cli_progress *p);

#endif
