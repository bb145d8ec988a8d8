// A real OpenID provider (oauth2-mock-server) on loopback for tests/test_oidc_provider.py.
//
// Prints one JSON line {"issuer", "jwks_uri", "token_endpoint"} once it listens on 127.0.0.1
// (random port), then serves until killed. Test-only controls:
//   POST /token?alg=RS256|ES256   sign the access token with that key
//   token request fields casesvc_role, casesvc_agency, audience, exp_offset: copied into the token
//   POST /rotate                  add a new RS256 key (new kid); it signs from now on for RS256
import http from "node:http";
import { OAuth2Issuer, OAuth2Service } from "oauth2-mock-server";

const issuer = new OAuth2Issuer();
const kids = { RS256: "rsa-1", ES256: "ec-1" };
await issuer.keys.generate("RS256", { kid: kids.RS256 });
await issuer.keys.generate("ES256", { kid: kids.ES256 });
let rotations = 0;

const service = new OAuth2Service(issuer);
service.on("beforeTokenSigning", (token, req) => {
  const body = req.body || {};
  for (const claim of ["casesvc_role", "casesvc_agency"]) {
    if (typeof body[claim] === "string") token.payload[claim] = body[claim];
  }
  if (typeof body.audience === "string") token.payload.aud = body.audience;
  if (typeof body.exp_offset === "string") {
    const now = Math.floor(Date.now() / 1000);
    token.payload.exp = now + Number(body.exp_offset);
    token.payload.nbf = now + Number(body.exp_offset) - 3600;
    token.payload.iat = token.payload.nbf;
  }
});

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, "http://127.0.0.1");
  if (req.method === "POST" && url.pathname === "/rotate") {
    rotations += 1;
    kids.RS256 = `rsa-${rotations + 1}`;
    await issuer.keys.generate("RS256", { kid: kids.RS256 });
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ kid: kids.RS256 }));
    return;
  }
  if (req.method === "POST" && url.pathname === "/token") {
    const alg = url.searchParams.get("alg") || "RS256";
    if (!(alg in kids)) {
      res.writeHead(400);
      res.end();
      return;
    }
    // keys.get(kid) moves that key to the back of the round robin: every key but the chosen
    // one goes there, so the chosen one signs the access token
    for (const kid of (issuer.keys.toJSON() || []).map((k) => k.kid)) {
      if (kid !== kids[alg]) issuer.keys.get(kid);
    }
  }
  service.requestHandler(req, res);
});

server.listen(0, "127.0.0.1", () => {
  const { port } = server.address();
  issuer.url = `http://127.0.0.1:${port}`;
  process.stdout.write(JSON.stringify({
    issuer: issuer.url,
    jwks_uri: `${issuer.url}/jwks`,
    token_endpoint: `${issuer.url}/token`,
  }) + "\n");
});

for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
