import { describe, expect, it } from 'vitest';
import { returnQuery, safeReturnPath } from './returnTo';

describe('safeReturnPath', () => {
  it('accepts paths of this app', () => {
    expect(safeReturnPath('/join/?code=abc_1-2')).toBe('/join/?code=abc_1-2');
    expect(safeReturnPath('/chat?id=0190')).toBe('/chat?id=0190');
    expect(safeReturnPath('/notifications/')).toBe('/notifications/');
  });

  it('refuses anything that could leave the app or loop', () => {
    for (const bad of [
      '//evil.example/',
      'https://evil.example/',
      'javascript:alert(1)',
      '/\\evil.example',
      '/join/../../x',
      '/login/?next=/join/',
      '/register',
      '',
      null,
      ['/join/'],
      `/join/?code=${'a'.repeat(3000)}`,
    ]) {
      expect(safeReturnPath(bad)).toBeNull();
    }
  });

  it('builds the login query', () => {
    expect(returnQuery('/join/?code=x')).toEqual({ next: '/join/?code=x' });
    expect(returnQuery('//evil')).toEqual({});
    expect(returnQuery(null)).toEqual({});
  });
});
