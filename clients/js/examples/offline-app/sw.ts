/**
 * The offline web app's service worker: the page and its assets come from the network when it answers,
 * else from the last copy cached here, so the app also opens (or reloads) while offline. The sync API is
 * never cached: the client and its store handle being offline.
 */

const worker = self as unknown as ServiceWorkerGlobalScope;

const CACHE = "offline-crm-v1";

worker.addEventListener("install", (event) => {
  // The page (this worker's scope) and the assets it named when it registered the worker.
  const assets = new URL(worker.location.href).searchParams.getAll("asset");
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll([worker.registration.scope, ...assets]))
      .then(() => worker.skipWaiting()),
  );
});

worker.addEventListener("activate", (event) => event.waitUntil(worker.clients.claim()));

worker.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== worker.location.origin || url.pathname.startsWith("/api/")) return;
  event.respondWith(
    fetch(event.request)
      .then(async (response) => {
        if (response.ok) await (await caches.open(CACHE)).put(event.request, response.clone());
        return response;
      })
      .catch(async () => (await caches.match(event.request, { ignoreSearch: true })) ?? Response.error()),
  );
});
