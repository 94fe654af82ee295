// better-sqlite3 ships no types (@types/better-sqlite3 is not a dependency): the part we use.
declare module 'better-sqlite3' {
  /** What SQLite binds: no booleans, no undefined (map them to 0/1 and null first). */
  export type Value = number | string | bigint | Buffer | null;
  export type Params = Value[] | [Record<string, Value>];

  export interface RunResult {
    changes: number;
    lastInsertRowid: number | bigint;
  }

  export interface Statement<Row = Record<string, unknown>> {
    run(...params: Params): RunResult;
    get(...params: Params): Row | undefined;
    all(...params: Params): Row[];
    iterate(...params: Params): IterableIterator<Row>;
    /** Rows as their first column only. */
    pluck(on?: boolean): this;
    readonly reader: boolean;
  }

  /** A function that runs inside BEGIN ... COMMIT (ROLLBACK when it throws); nested calls become savepoints. */
  export type Transaction<F extends (...args: never[]) => unknown> = F & {
    deferred: F;
    immediate: F;
    exclusive: F;
  };

  export interface Options {
    readonly?: boolean;
    fileMustExist?: boolean;
    /** Busy timeout in ms (default 5000). */
    timeout?: number;
    verbose?: (message?: unknown, ...more: unknown[]) => void;
  }

  export interface Database {
    readonly open: boolean;
    readonly inTransaction: boolean;
    readonly name: string;
    prepare<Row = Record<string, unknown>>(sql: string): Statement<Row>;
    exec(sql: string): this;
    pragma(source: string, options?: { simple?: boolean }): unknown;
    transaction<F extends (...args: never[]) => unknown>(fn: F): Transaction<F>;
    close(): this;
  }

  interface DatabaseConstructor {
    new (filename: string, options?: Options): Database;
    (filename: string, options?: Options): Database;
  }

  const Database: DatabaseConstructor;
  export default Database;
}
