// POST a heavy request and get its result either way the service answers it: 200 with the result (run
// synchronously), or 202 with Location: /v1/jobs/{id}, then poll the job until it succeeds, fails or is cancelled.

import { call } from "./api.js";

const DONE = new Set(["succeeded", "failed", "cancelled"]);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Returns {ok, status, body} like api.call: body is the result on success, a problem otherwise.
 * `progress` (a <progress> element, optional) shows the job's progress (0–1) while it runs.
 */
export async function submitJob(path, request, { progress, interval = 500, limit = 3600 } = {}) {
  const first = await call("POST", path, request);
  if (first.status !== 202) return first;
  const location = first.headers.get("Location") || (first.body.id ? `/v1/jobs/${first.body.id}` : null);
  if (!location) return { ok: false, status: 202, body: { title: "Accepted", status: 202, detail: "the job has no Location", errors: {} } };
  let job = first.body;
  if (progress) {
    progress.hidden = false;
    progress.value = job.progress ?? 0;
  }
  for (let i = 0; i < limit && !DONE.has(job.status); i++) {
    await sleep(interval);
    const poll = await call("GET", location);
    if (!poll.ok) return poll;
    job = poll.body;
    if (progress) {
      progress.value = job.progress ?? 0;
      progress.textContent = `${Math.round((job.progress ?? 0) * 100)} %`;
    }
  }
  if (job.status === "succeeded") return { ok: true, status: 200, body: job.result };
  const error = job.error || { title: job.status, status: 0, detail: `the job ${job.status ?? "did not finish"}`, errors: {} };
  return { ok: false, status: error.status, body: error };
}
