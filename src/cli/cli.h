/* cli.h: the subcommands of the `metalearn` command. Each returns the exit
 * status: 0 success, 1 failure (a one-line message on stderr), 2 usage. */
#ifndef ML_CLI_H
#define ML_CLI_H

int cmd_train(int argc, char **argv);
int cmd_params(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_plot(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_search(int argc, char **argv);
int cmd_bench(int argc, char **argv);

/* Exit statuses. */
enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };


#endif
