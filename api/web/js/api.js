// The one place that talks to the /v1 API: JSON in, JSON or problem+json out, the optional API key.

const KEY = "liqrisk.apiKey";

export function apiKey() {
  return sessionStorage.getItem(KEY) || "";
}

export function setApiKey(value) {
  if (value) sessionStorage.setItem(KEY, value);
  else sessionStorage.removeItem(KEY);
}

function headers(json) {
  const h = { Accept: "application/json, application/problem+json" };
  if (json) h["Content-Type"] = "application/json";
  const key = apiKey();
  if (key) h["X-API-Key"] = key;
  return h;
}

/**
 * Call the API. Resolves to {status, ok, body, headers}; `body` is the parsed JSON (a result or a problem),
 * or a problem object made here when the network fails or the answer is not JSON.
 */
export async function call(method, path, body) {
  let resp;
  try {
    resp = await fetch(path, {
      method,
      headers: headers(body !== undefined),
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    return { status: 0, ok: false, headers: new Headers(), body: problem(0, `the service did not answer (${err.message})`) };
  }
  let parsed;
  try {
    parsed = await resp.json();
  } catch {
    parsed = problem(resp.status, `the service answered ${resp.status} without JSON`);
  }
  return { status: resp.status, ok: resp.ok, headers: resp.headers, body: parsed };
}

function problem(status, detail) {
  return { type: "about:blank", title: "Error", status, detail, errors: {} };
}

let exchanges;

/** GET /v1/exchanges once per page: [{exchange, default_symbol, symbols, source, ...}]. */
export function listExchanges() {
  if (!exchanges) {
    exchanges = call("GET", "/v1/exchanges").then((r) => {
      if (r.ok) return r.body.exchanges;
      exchanges = undefined; // e.g. 401 before the API key is entered: ask again next time
      return [];
    });
  }
  return exchanges;
}
