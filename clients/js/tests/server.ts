/**
 * The live demo server the tests sync with: the repository's demo project (`manage.py runserver`
 * on a free loopback port, a SQLite file of its own), started once for the whole run.
 *
 * Its Python is `OFFLINE_SYNC_SERVER_PYTHON`, else the repository's `.venv/bin/python`, else
 * `python3`. A server that cannot start fails the run: nothing skips.
 */

import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, openSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { TestProject } from "vitest/node";

export const ROOT = resolve(fileURLToPath(new URL(".", import.meta.url)), "../../..");
const POOL = 200; // users with a token each, claimed one per test that needs a fresh user

// One Python start for all of it: migrate, the demo's data, and the users of the pool.
const PREPARE = `
import io
import json
from django.core.management import call_command
call_command("migrate", interactive=False, verbosity=0)
call_command("load_demo_data", stdout=io.StringIO())
from django.contrib.auth.models import Permission, User
from rest_framework.authtoken.models import Token
codenames = ["view_product"] + [f"{a}_{m}" for a in ("view", "add", "change", "delete") for m in ("company", "contact")]
perms = list(Permission.objects.filter(content_type__app_label__in=["catalog", "crm"], codename__in=codenames))
tokens = []
for i in range(${POOL}):
    user = User.objects.create_user(f"js{i:03}")
    user.user_permissions.set(perms)
    tokens.append(Token.objects.create(user=user).key)
print(json.dumps(tokens))
`;

export interface ServerInfo {
  baseUrl: string;
  python: string;
  env: Record<string, string>;
  tokens: string[];
  claims: string;
}

declare module "vitest" {
  export interface ProvidedContext {
    server: ServerInfo;
  }
}

function python(): string {
  if (process.env.OFFLINE_SYNC_SERVER_PYTHON) return process.env.OFFLINE_SYNC_SERVER_PYTHON;
  const venv = join(ROOT, ".venv/bin/python");
  return existsSync(venv) ? venv : "python3";
}

function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const probe = createServer();
    probe.once("error", fail);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => done(port));
    });
  });
}

export function manage(info: Pick<ServerInfo, "python" | "env">, ...args: string[]): string {
  return execFileSync(info.python, [join(ROOT, "manage.py"), ...args], {
    cwd: ROOT,
    env: info.env,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
}

async function waitForServer(baseUrl: string, child: ChildProcess, log: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`the demo server exited with ${child.exitCode}; see ${log}`);
    try {
      await fetch(`${baseUrl}/api/schema/`);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`the demo server did not answer within 60 s; see ${log}`);
}

export default async function setup(project: TestProject): Promise<() => void> {
  const directory = mkdtempSync(join(tmpdir(), "offline-sync-js-"));
  const port = await freePort();
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    DJANGO_DEBUG: "1",
    DATABASE_URL: `sqlite:///${join(directory, "db.sqlite3")}`,
    DJANGO_SETTINGS_MODULE: "demo_project.settings",
    DEMO_SYNC_RATE: "100000/min",
    DEMO_AUTH_RATE: "1000/min",
  };
  const info = { python: python(), env };
  const tokens = JSON.parse(manage(info, "shell", "--no-imports", "-c", PREPARE)) as string[];
  const log = join(directory, "server.log");
  const out = openSync(log, "a");
  const child = spawn(info.python, [join(ROOT, "manage.py"), "runserver", "--noreload", `127.0.0.1:${port}`], {
    cwd: ROOT,
    env,
    stdio: ["ignore", out, out],
  });
  const baseUrl = `http://127.0.0.1:${port}`;
  try {
    await waitForServer(baseUrl, child, log);
  } catch (error) {
    child.kill("SIGKILL");
    throw error;
  }
  project.provide("server", { baseUrl, python: info.python, env, tokens, claims: join(directory, "claims") });
  return () => {
    child.kill("SIGTERM");
    rmSync(directory, { recursive: true, force: true });
  };
}
