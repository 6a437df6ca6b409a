/*
 * The hello plugin of docs/plugins.md (docs/examples/hello-plugin.c, kept
 * there as the one copy the doc is checked against), built here as
 * examples/hello.la so its objects stay out of docs/; the test suite
 * loads it in `dgw run` against `dgw mock` (tests/test_mock_examples.sh).
 */
#include "../docs/examples/hello-plugin.c"
