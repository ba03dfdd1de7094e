/* metalearn.h: the whole public API of libmetalearn in one include.
 *
 *     #include <metalearn.h>    cc prog.c $(pkg-config --cflags --libs metalearn)
 *
 * A tour of one MAML step, bottom to top (each header says more):
 *   core.h     status codes (ml_status, ml_status_text), the allocator, arenas, ml_rng
 *   tensor.h   an ml_ctx records ops on ml_tensor into a tape; ml_grad differentiates
 *              it, and its backward rules are ops too, so gradients of gradients work
 *   nn.h       ml_model: an MLP or a 4-block CNN from a spec ("mlp:40,40"), all
 *              parameters in one flat buffer
 *   optim.h    optimizers over flat buffers (Adam, SGD, ...) and schedules
 *   meta.h     ml_meta_init / ml_meta_step: adapt a copy of theta to each task's
 *              support set (inner loop), score it on the query set, and update theta
 *              with the exact meta-gradient; ml_meta_predict_outputs adapts to one
 *              support set and predicts its query
 *   tasks.h, images.h, data.h   where tasks come from (sinusoid, CSV, Omniglot, IDX, folders)
 *   run.h, options.h            a training run's settings, as `metalearn train` takes them
 *   federated.h                 the transport between a federated run's server and clients
 *   io.h, rundir.h              safetensors checkpoints and run folders
 *   env.h, rl.h                 meta-reinforcement learning: environments in C, MAML-RL
 *                               with a TRPO or Adam outer step
 * The rest: evaluation (eval.h, taskeval.h), search.h, train.h (supervised),
 * plot.h, pool.h. Every public name starts with ml_; the library never prints
 * and never exits: errors come back as an ml_status with a message. */
#ifndef METALEARN_H
#define METALEARN_H

#include "metalearn/continual.h"
#include "metalearn/core.h"
#include "metalearn/data.h"
#include "metalearn/dist.h"
#include "metalearn/env.h"
#include "metalearn/eval.h"
#include "metalearn/federated.h"
#include "metalearn/images.h"
#include "metalearn/io.h"
#include "metalearn/meta.h"
#include "metalearn/nn.h"
#include "metalearn/optim.h"
#include "metalearn/options.h"
#include "metalearn/plot.h"
#include "metalearn/rl.h"
#include "metalearn/pool.h"
#include "metalearn/run.h"
#include "metalearn/rundir.h"
#include "metalearn/search.h"
#include "metalearn/sources.h"
#include "metalearn/taskeval.h"
#include "metalearn/tasks.h"
#include "metalearn/tensor.h"
#include "metalearn/train.h"

#endif
