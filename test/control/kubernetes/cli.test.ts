// `skein control`'s Kubernetes flags: --kubernetes (in-cluster), --kubeconfig FILE, --kube-namespace NS.
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type ControlArgs, parseControlArgs } from '../../../control/cli.ts';

const parse = (...argv: string[]) => parseControlArgs(argv) as ControlArgs;

describe('skein control Kubernetes flags', () => {
  it('has no discovery by default', () => {
    expect(parse().kubernetes).toBeUndefined();
  });

  it('--kubernetes discovers in-cluster, in all namespaces unless --kube-namespace', () => {
    expect(parse('--kubernetes').kubernetes).toEqual({});
    expect(parse('--kubernetes', '--kube-namespace', 'shop').kubernetes).toEqual({ namespace: 'shop' });
  });

  it('--kubeconfig FILE reads the file (resolved), and implies discovery', () => {
    expect(parse('--kubeconfig', 'k.yaml').kubernetes).toEqual({ kubeconfig: resolve('k.yaml') });
  });

  it('refuses --kube-namespace alone, both sources at once, and a namespace that is no DNS label', () => {
    expect(() => parse('--kube-namespace', 'shop')).toThrow('--kube-namespace needs --kubernetes or --kubeconfig');
    expect(() => parse('--kubernetes', '--kubeconfig', 'k')).toThrow('exclude each other');
    expect(() => parse('--kubernetes', '--kube-namespace', 'Shop_1')).toThrow('--kube-namespace must be');
  });
});
