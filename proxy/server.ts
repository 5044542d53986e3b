// The proxy process's owner of everything long-lived: it compiles configs into Snapshots, binds and swaps
// listeners, keeps clusters (and their pools) alive across reloads when their config did not change, runs
// the admin listener, and drains on shutdown. A config that fails to compile or bind leaves the last good
// Snapshot serving.
import type { X509Certificate } from 'node:crypto';
import type http from 'node:http';
import { clusterConfigKey, compileSnapshot, type Snapshot } from '../src/config/compile.ts';
import { resolveConfigPaths } from '../src/config/paths.ts';
import type { Config } from '../src/config/schema.ts';
import { parseHostPort } from '../src/discovery/address.ts';
import { createAdminServer } from './admin.ts';
import { Cluster } from './cluster.ts';
import { ListenerRuntime, sameBinding, type TlsMaterial } from './listener.ts';
import { type ListenerScope, listenerScope } from './scope.ts';
import { buildChain } from './stages/chain.ts';
import type { OriginalDstTable } from '../src/routing/original-dst.ts';
import { originalDstAddon } from './original-dst.ts';
import { StateStore } from './stages/state.ts';
import type { Logger } from '../src/log.ts';
import { ProxyStats } from './stats.ts';
import { ProxyTelemetry } from './telemetry.ts';
import { ConfigError } from '../src/config/load.ts';
import { ExpiryWatch } from './mtls/expiry.ts';
import { readIdentityFiles } from './mtls/files.ts';
import { RefusalLog } from './mtls/upstream.ts';
import { MeshIdentity, policyOf } from './mtls/identity.ts';

export interface ProxyServerOptions {
  log: Logger;
  /**
   * Relative paths in a config handed to apply() resolve against it (src/config/paths.ts); the config file's
   * directory, or the working directory for the quick form. A loaded file's paths are already absolute.
   */
  baseDir: string;
}

export class ProxyServer {
  readonly log: Logger;
  readonly stats = new ProxyStats();
  readonly telemetry: ProxyTelemetry;
  private readonly baseDir: string;
  private current: Snapshot<Cluster> | null = null;
  private readonly listeners = new Map<string, ListenerRuntime>();
  /** Stage state that outlives a reload (stages/state.ts). */
  private readonly stageState = new StateStore();
  /** The mesh identity (mtls/identity.ts): made with the first config that has `mtls`, kept across reloads
   *  (control's certificate and trust go into it, and the files' parts on each apply). */
  identity: MeshIdentity | null = null;
  private unwatchIdentity: (() => void) | null = null;
  private readonly refusals = new RefusalLog();
  private admin: http.Server | null = null;
  private adminAddress = '';
  private started = false;
  draining = false;

  constructor(opts: ProxyServerOptions) {
    this.log = opts.log;
    this.baseDir = opts.baseDir;
    this.telemetry = new ProxyTelemetry(opts.log, opts.baseDir);
    this.stats.watchEndpoints(() => this.current?.clusters.values() ?? []);
    this.stats.watchCircuitBreakers(() => this.current?.clusters.values() ?? []);
  }

  get snapshot(): Snapshot<Cluster> {
    if (this.current === null) throw new Error('proxy not started');
    return this.current;
  }

  /**
   * Ready once started, not draining, and every cluster's discovery has answered once (like Envoy's cluster
   * warming): an orchestrator then does not send traffic that would only get "no healthy upstream".
   */
  get ready(): boolean {
    if (!this.started || this.draining || this.current === null) return false;
    for (const c of this.current.clusters.values()) if (!c.warmed) return false;
    return true;
  }

  /** Compile and serve `config`. On any failure the previous Snapshot keeps serving and this throws. */
  async apply(given: Config): Promise<Snapshot<Cluster>> {
    if (this.draining) throw new Error('draining: config not applied');
    const config = resolveConfigPaths(given, this.baseDir);
    await this.telemetry.prepare(config.telemetry);
    const prev = this.current;
    // The identity's parts are checked now and swapped in with the Snapshot (commitIdentity below).
    const commitIdentity = this.prepareIdentity(config);
    const identity = config.mtls === undefined ? null : this.identity;
    const mtls =
      identity === null
        ? null
        : {
            identity,
            report: (cluster: string, result: string, detail: string) => {
              this.stats.mtlsHandshake('outbound', result);
              if (result === 'ok') return;
              if (!this.refusals.due(`${cluster}|${result}`)) return;
              this.log.warn('mtls: upstream refused', { cluster, reason: result, detail });
            },
          };
    const created: Cluster[] = [];
    let next: Snapshot<Cluster>;
    const stateBefore = this.stageState.keys();
    this.stageState.beginCompile();
    const scopes = new Map<string, ListenerScope>();
    try {
      next = compileSnapshot(config, (prev?.version ?? 0) + 1, (cfg) => {
        // A cluster made without the identity is not the same cluster with it.
        const key = clusterConfigKey(cfg) + (identity === null ? '' : '|mtls');
        const old = prev?.clusters.get(cfg.name);
        if (old !== undefined && old.key === key) return old;
        const c = new Cluster(cfg, key, {
          baseDir: this.baseDir,
          log: this.log,
          onUpstreamConnection: (cluster, delta) => this.stats.upstreamConnections(cluster, delta),
          onUpstreamEvent: (cluster, event) => this.stats.upstreamEvent(cluster, event),
          onHealthEvent: (cluster, event) => this.stats.onClusterHealthEvent(cluster, event),
          onOverflow: (cluster, threshold) => this.stats.upstreamOverflow(cluster, threshold),
          mtls,
        });
        created.push(c);
        return c;
      });
      const deps = { stats: this.stats, telemetry: this.telemetry, log: this.log, identity };
      for (const [name, compiled] of next.listeners) {
        const chain = buildChain(compiled, this.stageState);
        const captured = compiled.originalDst !== undefined && compiled.config.protocol === 'http';
        const tcpChain = captured ? buildChain(compiled, this.stageState, undefined, 'tcp') : null;
        scopes.set(name, listenerScope(compiled, chain, config.service, deps, tcpChain));
      }
    } catch (err) {
      this.stageState.abort(stateBefore);
      for (const c of created) c.close();
      throw err;
    }

    // Bind new listeners and a new admin address before touching the running ones, so a port conflict rejects
    // the whole config (and a first config that cannot start leaves nothing bound to keep the process alive).
    const fresh: ListenerRuntime[] = [];
    const newTls = new Map<ListenerRuntime, TlsMaterial>();
    let admin: http.Server | null = null;
    try {
      for (const [name, compiled] of next.listeners) {
        const running = this.listeners.get(name);
        if (running !== undefined && sameBinding(running.scope.compiled.config, compiled.config)) {
          const material = running.prepareTls(compiled.config);
          if (material !== null) newTls.set(running, material);
          continue;
        }
        const l = new ListenerRuntime(scopes.get(name)!);
        await l.listen();
        fresh.push(l);
      }
      if (config.admin !== undefined && config.admin.address !== this.adminAddress)
        admin = await this.bindAdmin(config.admin.address);
    } catch (err) {
      for (const l of fresh) l.destroy();
      this.stageState.abort(stateBefore);
      for (const c of created) c.close();
      throw err;
    }

    // Start what the new Snapshot needs: discovery, health checks and the outlier sweep of the clusters this
    // config created (compiling started nothing; reused clusters are running already). Static discovery answers
    // within start(), so the first request after the swap finds endpoints.
    for (const c of created) {
      if (c.config.healthChecks !== undefined) this.stats.registerHealthChecks(c);
      if (c.config.outlierDetection !== undefined) this.stats.registerOutlierDetection(c);
      c.start();
    }

    // Swap, then stop what only the old Snapshot needed.
    commitIdentity();
    this.telemetry.apply(config.telemetry, config.service);
    this.stats.metricsEnabled = config.telemetry.metrics.enabled;
    for (const name of next.listeners.keys()) {
      const running = this.listeners.get(name);
      const replacement = fresh.find((l) => l.name === name);
      if (replacement !== undefined) {
        if (running !== undefined) this.retire(running);
        this.listeners.set(name, replacement);
      } else {
        running!.update(scopes.get(name)!);
        const material = newTls.get(running!);
        if (material !== undefined) {
          running!.applyTls(material);
          this.log.info('tls certificate replaced', { listener: name, sha256: material.digest.slice(0, 16) });
        }
      }
    }
    for (const [name, l] of this.listeners) {
      if (!next.listeners.has(name)) {
        this.retire(l);
        this.listeners.delete(name);
      }
    }
    this.current = next;
    this.stageState.commit();
    for (const scope of scopes.values()) {
      if (scope.chain.names.includes('rate-limit')) this.stats.registerRateLimits();
      if (scope.chain.names.includes('retry')) this.stats.registerRetries();
      if (scope.chain.names.includes('mirror')) this.stats.registerMirrors();
    }
    if (prev !== null)
      for (const [name, c] of prev.clusters) {
        if (next.clusters.get(name) === c) continue;
        c.close();
        if (!next.clusters.has(name)) this.stats.forgetCluster(name);
      }
    this.stats.configVersion = next.version;
    this.stats.configHash = next.hash;

    // The admin listener follows the config like any other: moved to a new address (bound above, before
    // anything was swapped, so a taken port rejects the reload) or closed when the config drops it.
    if (admin !== null || (config.admin === undefined && this.admin !== null)) {
      if (this.admin !== null) {
        if (prev !== null)
          this.log.info(admin !== null ? 'admin listener moved' : 'admin listener closed', {
            from: this.adminAddress,
            ...(admin !== null ? { to: config.admin!.address } : {}),
          });
        closeAdmin(this.admin);
      }
      this.admin = admin;
      this.adminAddress = config.admin?.address ?? '';
    }
    this.started = true;
    this.log.info('config applied', {
      version: next.version,
      listeners: [...this.listeners.values()].map((l) => `${l.name}@${formatAddress(l.address)}`),
      clusters: [...next.clusters.keys()],
    });
    return next;
  }

  /**
   * The config's `mtls` parts (policy, and the files it names) checked against the identity without changing
   * it; throws with the field and reason. Parts the files do not give must already be there (from control).
   */
  private prepareIdentity(config: Config): () => void {
    if (config.mtls === undefined) return () => {};
    const identity = (this.identity ??= this.makeIdentity());
    const files = readIdentityFiles(config.mtls);
    let commit: () => void;
    try {
      commit = identity.prepare({ policy: policyOf(config.mtls), ...files });
    } catch (err) {
      throw new ConfigError('config', [`mtls: ${(err as Error).message}`]);
    }
    if (files.material === undefined && identity.id === '')
      throw new ConfigError('config', [
        'mtls.certFile: no certificate: give certFile and keyFile, or run with --control to get one from control',
      ]);
    if (files.trust === undefined && identity.roots.length === 0)
      throw new ConfigError('config', [
        'mtls.trustBundleFile: no trust bundle: give trustBundleFile, or run with --control to get it from control',
      ]);
    return commit;
  }

  /** The identity, made now if the proxy has none yet (the control issuer fills it before the first apply). */
  ensureIdentity(): MeshIdentity {
    return (this.identity ??= this.makeIdentity());
  }

  private makeIdentity(): MeshIdentity {
    const identity = new MeshIdentity(this.log);
    let shown = '';
    const expiry = new ExpiryWatch(identity, this.log);
    const unsubscribe = identity.subscribe((id) => {
      if (shown !== '' && shown !== id.id) this.stats.removeCertificate(shown);
      shown = id.id;
      if (id.id !== '') this.stats.setCertificateExpiry(id.id, id.notAfterMs, id.notBeforeMs);
      expiry.check();
    });
    expiry.start();
    this.unwatchIdentity = () => {
      unsubscribe();
      expiry.stop();
    };
    return identity;
  }

  /** A listener removed or re-bound by a reload: stop accepting now, cut what is left after the drain time. */
  private retire(l: ListenerRuntime): void {
    l.startDrain();
    setTimeout(() => l.destroy(), this.current?.config.drainTimeoutMs ?? 10_000).unref();
  }

  private async bindAdmin(address: string): Promise<http.Server> {
    const { host, port } = parseHostPort(address);
    const server = createAdminServer(this);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return server;
  }

  listenerAddress(name: string): { host: string; port: number } | null {
    const a = this.listeners.get(name)?.address;
    return a ? { host: a.address, port: a.port } : null;
  }

  get adminPort(): number | null {
    const a = this.admin?.address();
    return a !== null && typeof a === 'object' ? a.port : null;
  }

  describeListeners(): object[] {
    return [...this.listeners.values()].map((l) => ({
      name: l.name,
      address: formatAddress(l.address),
      direction: l.scope.direction,
      protocol: l.scope.compiled.config.protocol,
      tls: l.scope.compiled.config.tls !== undefined,
      mtls: l.scope.compiled.config.mtls,
      routes: l.scope.compiled.routes.routes.map((r) => ({ name: r.name, clusters: r.clusters.map((c) => c.name) })),
      // Transparent capture: the service addresses it routes by, and where the rest goes; null when not captured.
      originalDst: describeOriginalDst(l.scope.compiled.originalDst),
      stages: l.scope.chain.names,
      openConnections: l.openConnections,
    }));
  }

  /** For the admin /certs: the mesh identity's certificates (never the key), the roots and the CRL's size. */
  describeIdentity(): object {
    const id = this.identity;
    if (id === null) return { mtls: false };
    const cert = (c: X509Certificate) => ({
      subject: c.subject,
      issuer: c.issuer,
      serial: c.serialNumber.toLowerCase(),
      notBefore: new Date(c.validFrom).toISOString(),
      notAfter: new Date(c.validTo).toISOString(),
      subjectAltName: c.subjectAltName,
      sha256: c.fingerprint256,
    });
    return {
      mtls: true,
      id: id.id,
      trustDomain: id.policy.trustDomain,
      chain: id.chain.map(cert),
      roots: id.roots.map(cert),
      revokedSerials: id.revokedCount,
    };
  }

  /**
   * Graceful shutdown: stop accepting, let requests in flight finish up to the drain deadline, close idle
   * keep-alive connections, then cut the rest and release every resource.
   */
  async drain(deadlineMs = this.current?.config.drainTimeoutMs ?? 10_000): Promise<{ cutRequests: number }> {
    this.draining = true;
    for (const l of this.listeners.values()) l.startDrain();
    const until = Date.now() + deadlineMs;
    while (this.stats.inFlight > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    const cutRequests = this.stats.inFlight;
    for (const l of this.listeners.values()) l.destroy();
    if (this.current !== null) for (const c of this.current.clusters.values()) c.close();
    this.unwatchIdentity?.();
    this.stageState.disposeAll(); // stage state's timers and connections (a global rate limit's Redis)
    const admin = this.admin;
    if (admin !== null) {
      const closed = new Promise<void>((r) => admin.close(() => r()));
      admin.closeAllConnections();
      await closed;
    }
    await this.telemetry.shutdown();
    this.log.info('drained', { cutRequests });
    return { cutRequests };
  }
}

/** Stop accepting and let the requests being answered finish; idle keep-alive connections go now. */
function closeAdmin(server: http.Server): void {
  server.close();
  server.closeIdleConnections();
}

function formatAddress(a: { address: string; port: number } | null): string {
  if (a === null) return '(not bound)';
  return a.address.includes(':') ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}

function describeOriginalDst(table: OriginalDstTable<Cluster> | undefined): object | null {
  if (table === undefined) return null;
  return {
    serviceAddresses: Object.fromEntries(
      [...table.byAddress].map(([address, route]) => [address, route.clusters[0].name]),
    ),
    fallback: table.fallback.clusters[0].name,
    addon: originalDstAddon().addon === null ? `unavailable: ${originalDstAddon().why}` : 'loaded',
  };
}
