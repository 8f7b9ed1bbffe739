/* gram: the program's entry point. Everything else lives in the other cli/ files, so a fuzz target
 * can link them and call cli_main(argc, argv, 1) on option values without this main. */
#include "cli.h"

int main(int argc, char **argv)
{
    int rc = cli_read_environment();
    return rc ? rc : cli_main(argc, argv, 0);
}
