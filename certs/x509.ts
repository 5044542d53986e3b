// The one door to @peculiar/x509: its dependency injection (tsyringe) needs the reflect-metadata polyfill loaded
// first, and it signs and verifies with whatever WebCrypto it is given (Node's). Import X.509 types from here.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import { cryptoProvider } from '@peculiar/x509';

cryptoProvider.set(webcrypto as unknown as Parameters<typeof cryptoProvider.set>[0]);

export * from '@peculiar/x509';
