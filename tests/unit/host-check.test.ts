import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/env.ts';
import { assertLoopbackListen, hostName, isAllowedHost, isLoopbackAddress } from '../../src/api/host-check.ts';

describe('Host header check (no API keys)', () => {
  it.each(['localhost', 'localhost:3000', 'LocalHost.', '127.0.0.1', '127.8.9.10:80', '[::1]', '[::1]:3000', 'app.internal', 'APP.internal:8443'])('accepts %j', (host) => {
    expect(isAllowedHost(host, ['app.internal'])).toBe(true);
  });
  it.each(['attacker.test', '127.0.0.1.nip.io', 'localhost.attacker.test', 'app.internal.evil', '0.0.0.0', '[::]', '[::ffff:7f00:1]x', 'a b', '', undefined, 'localhost:99999999'])('refuses %j', (host) => {
    expect(isAllowedHost(host, ['app.internal'])).toBe(false);
  });
  it('matches configured names as loadConfig spells them (IPv6 without brackets)', () => {
    expect(isAllowedHost('[FD00::1]:8080', loadConfig({ SWITCHYARD_ALLOWED_HOSTS: '[fd00::1]' }).allowedHosts)).toBe(true);
    expect(isAllowedHost('Switchyard.Internal.:80', loadConfig({ SWITCHYARD_ALLOWED_HOSTS: 'switchyard.internal' }).allowedHosts)).toBe(true);
  });
  it('reads the name without port or brackets', () => {
    expect(hostName('[::1]:80')).toBe('::1');
    expect(hostName('Example.COM.:8080')).toBe('example.com');
  });
  it('knows loopback addresses from names that look like them', () => {
    expect(isLoopbackAddress('127.0.0.1')).toBe(true);
    expect(isLoopbackAddress('::ffff:127.0.0.1')).toBe(true);
    expect(isLoopbackAddress('127.0.0.1.nip.io')).toBe(false);
    expect(isLoopbackAddress('::ffff:10.0.0.1')).toBe(false);
  });
});

describe('listening without keys', () => {
  const resolvesTo = (...addresses: string[]) => async () => addresses;
  it('accepts loopback addresses without resolving them, and names that resolve to loopback only', async () => {
    const never = async (): Promise<string[]> => {
      throw new Error('must not resolve');
    };
    await expect(assertLoopbackListen('127.0.0.1', never)).resolves.toBeUndefined();
    await expect(assertLoopbackListen('::1', never)).resolves.toBeUndefined();
    await expect(assertLoopbackListen('localhost', resolvesTo('127.0.0.1', '::1'))).resolves.toBeUndefined();
    await expect(assertLoopbackListen('localhost')).resolves.toBeUndefined(); // the system resolver
  });
  it('refuses a name with any address outside loopback, a name that does not resolve, and wildcard addresses', async () => {
    await expect(assertLoopbackListen('127.0.0.1.nip.io', resolvesTo('127.0.0.1', '203.0.113.7'))).rejects.toThrow(/HOST=127\.0\.0\.1\.nip\.io.*203\.0\.113\.7.*SWITCHYARD_API_KEYS/);
    await expect(assertLoopbackListen('gone.invalid', async () => Promise.reject(new Error('ENOTFOUND')))).rejects.toThrow(/does not resolve.*SWITCHYARD_API_KEYS/);
    await expect(assertLoopbackListen('0.0.0.0', resolvesTo('0.0.0.0'))).rejects.toThrow(/SWITCHYARD_API_KEYS/);
  });
});
