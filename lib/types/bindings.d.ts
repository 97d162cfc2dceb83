declare module 'bindings' {
  interface BindingsOptions {
    bindings: string;
    try?: string[][];
    module_root?: string;
  }
  function bindings(opts: string | BindingsOptions): unknown;
  export = bindings;
}
