/* progress.c: see progress.h. Only presentation: what to report and when
 * is the library's (ml_progress_report). */
#include "cli/progress.h"

#include <unistd.h>

#include "metalearn/dist.h"

static void draw(void *user, const char *what, int64_t done, int64_t total) {
    cli_progress *p = user;
    if (!p->out || total <= 0) return;
    double now = ml_now(), el = now - p->t0, frac = (double)done / (double)total;
    if (frac > 1) frac = 1;
    int end = done >= total;
    if (p->tty) {
        /* At most ~10 redraws a second: a bar is for the eye. */
        if (!end && now - p->last_t < 0.1) return;
        p->last_t = now;
        char bar[31];
        int fill = (int)(frac * 30);
        for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
        bar[30] = 0;
        double eta = frac > 0 ? el / frac - el : 0;
        fprintf(p->out, "\r%s [%s] %3d%% %lld/%lld  %.0f s", what, bar, (int)(frac * 100), (long long)done,
                (long long)total, end ? el : eta);
        fprintf(p->out, end ? " \n" : " left ");
        p->open_line = !end;
        fflush(p->out);
        return;
    }
    int tenth = (int)(frac * 10);
    if (!end && tenth <= p->last_tenth && now - p->last_t < 30) return;
    p->last_tenth = tenth;
    p->last_t = now;
    fprintf(p->out, "%s: %lld/%lld (%d%%), %.1f s\n", what, (long long)done, (long long)total, (int)(frac * 100), el);
    fflush(p->out);
}

ml_progress cli_progress_start(cli_progress *p, int quiet) {
    quiet |= ml_dist_rank() > 0; /* under mpirun rank 0 tells the progress */
    p->out = quiet ? NULL : stderr;
    p->tty = !quiet && isatty(2);
    p->t0 = p->last_t = ml_now();
    p->last_tenth = 0;
    p->open_line = 0;
    return (ml_progress){quiet ? NULL : draw, p};
}

void cli_progress_end(cli_progress *p) {
    if (p->out && p->open_line) fputc('\n', p->out);
    p->open_line = 0;
}
