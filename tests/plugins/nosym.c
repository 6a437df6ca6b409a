/*
 * A shared object that is not a dgw plugin: it exports a function, but
 * not dgw_plugin_describe.  The host must refuse it by name.
 */
int dgw_plugin_described(void);

int dgw_plugin_described(void) {
  return 42;
}
