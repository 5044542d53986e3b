// Watches the files a running config depends on (the config file itself and the TLS files its listeners
// name) and calls back, debounced, when one of them may have changed. Directories are watched, not files:
// editors, config-map and secret updates replace a file (or swap a `..data` symlink) rather than write it.
import { type FSWatcher, statSync, watch } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';

/** Events closer together than this are one change (an editor's write-and-rename, a cert and its key). */
const DEBOUNCE_MS = 100;

interface WatchedDir {
  watcher: FSWatcher;
  /** Absolute file path → its identity when last seen. */
  files: Map<string, string>;
}

export class ConfigWatcher {
  private readonly dirs = new Map<string, WatchedDir>();
  private timer: NodeJS.Timeout | null = null;
  private changed = new Set<string>();
  private readonly onChange: (files: string[]) => void;

  constructor(onChange: (files: string[]) => void) {
    this.onChange = onChange;
  }

  /** Watch exactly these files from now on (absolute or relative to the working directory). */
  setFiles(paths: readonly string[]): void {
    const wanted = new Map<string, Set<string>>();
    for (const p of paths) {
      const file = resolve(p);
      const dir = dirname(file);
      if (!wanted.has(dir)) wanted.set(dir, new Set());
      wanted.get(dir)!.add(file);
    }
    for (const [dir, w] of this.dirs)
      if (!wanted.has(dir)) {
        w.watcher.close();
        this.dirs.delete(dir);
      }
    for (const [dir, files] of wanted) {
      let w = this.dirs.get(dir);
      if (w === undefined) {
        try {
          const watcher = watch(dir, (_event, name) => this.onEvent(dir, name));
          watcher.on('error', () => {}); // a removed directory: SIGHUP still reloads
          watcher.unref();
          w = { watcher, files: new Map() };
        } catch {
          continue; // a directory that does not exist (yet): nothing to watch; the config check reports the file
        }
        this.dirs.set(dir, w);
      }
      for (const f of w.files.keys()) if (!files.has(f)) w.files.delete(f);
      for (const f of files) if (!w.files.has(f)) w.files.set(f, fileIdentity(f));
    }
  }

  close(): void {
    for (const w of this.dirs.values()) w.watcher.close();
    this.dirs.clear();
    if (this.timer !== null) clearTimeout(this.timer);
  }

  private onEvent(dir: string, name: string | Buffer | null): void {
    const w = this.dirs.get(dir);
    if (w === undefined) return;
    const named = name === null ? null : String(name);
    for (const [file, identity] of w.files) {
      // An event for another name counts only if the file now resolves to something else: a Kubernetes ConfigMap
      // or Secret update swaps the `..data` symlink and never touches the file's own name.
      const now = fileIdentity(file);
      if (named !== null && named !== basename(file) && now === identity) continue;
      w.files.set(file, now);
      this.changed.add(file);
    }
    if (this.changed.size === 0) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      const files = [...this.changed];
      this.changed.clear();
      this.onChange(files);
    }, DEBOUNCE_MS);
    this.timer.unref();
  }
}

/** What `path` resolves to (symlinks followed) and its size and mtime; changes when the file's content may have. */
function fileIdentity(path: string): string {
  try {
    const s = statSync(path);
    return `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch (err) {
    return `error:${(err as NodeJS.ErrnoException).code}`;
  }
}
