// A real OpenID provider for Distill's sign-in tests: the certified `oidc-provider` package with
// one confidential client, static test accounts and its built-in login form (devInteractions).
// Started by tests/oidc_provider.py: `node provider.mjs` with OIDC_PORT, OIDC_CLIENT_ID,
// OIDC_CLIENT_SECRET and OIDC_ACCOUNTS (JSON: {"alice": {"email": ..., "name": ...}, ...}).
// Listens on 127.0.0.1 only; prints "listening <issuer>" once it accepts requests.
import Provider from 'oidc-provider';

const port = Number(process.env.OIDC_PORT);
const issuer = `http://127.0.0.1:${port}`;
const accounts = JSON.parse(process.env.OIDC_ACCOUNTS || '{}');

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: process.env.OIDC_CLIENT_ID,
      client_secret: process.env.OIDC_CLIENT_SECRET,
      // "native" only so that the loopback redirect URI matches on any port (RFC 8252 7.3):
      // the app under test listens on a free port chosen after this provider started. The flow
      // is the web one: authorization code, PKCE S256, client_secret_basic at the token endpoint.
      application_type: 'native',
      redirect_uris: ['http://127.0.0.1/oauth2callback'],
      post_logout_redirect_uris: ['http://127.0.0.1/oauth2callback'],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  async findAccount(ctx, id) {
    const account = accounts[id];
    if (!account) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, email: account.email, email_verified: true, name: account.name };
      },
    };
  },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  // Authlib (what st.login uses) reads the claims from the ID token, not from /me.
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  cookies: { keys: ['distill-tests-only-not-a-secret'] },
});
provider.proxy = false;

const server = provider.listen(port, '127.0.0.1', () => {
  console.log(`listening ${issuer}`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
