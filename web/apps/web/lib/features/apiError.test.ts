import { describe, expect, it } from 'vitest';
import { ApiRequestError, call, errorMessage, requestError, sentence } from './apiError';

const answer = (status: number, body?: unknown) =>
  body === undefined ? new Response(null, { status }) : Response.json(body, { status });

describe('api errors as sentences', () => {
  it('capitalises and ends sentences', () => {
    expect(sentence('only group admins may do this')).toBe('Only group admins may do this.');
    expect(sentence('Done!')).toBe('Done!');
    expect(sentence('  ')).toBe('');
  });

  it('prefers the caller wording by code, then by status, then generic, then the api', () => {
    const body = { error: { code: 'forbidden', message: 'only group admins may do this' } };
    expect(requestError(body, answer(403), { forbidden: 'A' }).message).toBe('A');
    expect(requestError(body, answer(403), { 403: 'B' }).message).toBe('B');
    expect(requestError(body, answer(403)).message).toBe('Only group admins may do this.');
    expect(requestError(undefined, answer(429)).message).toMatch(/Too many requests/);
    expect(requestError(undefined, answer(418)).message).toBe('The request failed (HTTP 418).');
    const error = requestError(body, answer(403));
    expect(error).toBeInstanceOf(ApiRequestError);
    expect([error.code, error.status]).toEqual(['forbidden', 403]);
  });

  it('runs a call: data, an api error, or no connection', async () => {
    await expect(call(async () => ({ data: 5, response: answer(200, 5) }))).resolves.toBe(5);
    await expect(
      call(async () => ({
        error: { error: { code: 'not_found', message: 'not found' } },
        response: answer(404, {}),
      })),
    ).rejects.toThrow('Not found.');
    const offline = call(async () => {
      throw new TypeError('Failed to fetch');
    });
    await expect(offline).rejects.toThrow(/Can't reach the server.*Failed to fetch/);
    expect(errorMessage(new Error('x'))).toBe('x');
    expect(errorMessage('weird')).toMatch(/Something went wrong/);
  });
});
