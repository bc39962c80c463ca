import { corsOrigins, LOCAL_DEVELOPMENT_ORIGINS, originMatcher } from './http-security';

describe(originMatcher.name, () => {
  const local = originMatcher(LOCAL_DEVELOPMENT_ORIGINS);

  it.each(['http://localhost:5173', 'http://localhost:3000', 'http://localhost', 'http://127.0.0.1:8080', 'http://[::1]:5173'])(
    'allows the local development origin %s',
    (origin) => expect(local(origin)).toBe(true),
  );

  it.each([
    'https://localhost:5173', // another scheme is another origin
    'http://localhost.evil.example:5173',
    'http://evil.example/http://localhost:5173',
    'http://127.0.0.1.nip.io:80',
    'http://localhost:5173/',
    'null',
    '',
  ])('refuses %j', (origin) => expect(local(origin)).toBe(false));

  it('matches listed origins exactly, and * ports only where listed', () => {
    const listed = originMatcher(['https://app.example.com', 'http://dev.example.com:*']);
    expect(listed('https://app.example.com')).toBe(true);
    expect(listed('https://app.example.com:8443')).toBe(false);
    expect(listed('http://dev.example.com:4200')).toBe(true);
    expect(listed('http://localhost:5173')).toBe(false);
  });
});

describe(corsOrigins.name, () => {
  it('defaults to local development origins, to none in production, and to exactly CORS_ORIGINS when set', () => {
    expect(corsOrigins({ NODE_ENV: 'development' })).toEqual(LOCAL_DEVELOPMENT_ORIGINS);
    expect(corsOrigins({ NODE_ENV: 'production' })).toEqual([]);
    expect(corsOrigins({ NODE_ENV: 'development', CORS_ORIGINS: 'https://app.example.com/, http://localhost:5173' })).toEqual([
      'https://app.example.com',
      'http://localhost:5173',
    ]);
  });
});
