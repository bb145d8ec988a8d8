"""The document from a TypeScript client's side and a linter's: `openapi-typescript` generates
types from openapi/openapi.yaml that a small program type-checks against under `tsc --strict`
(Problem's extension members included), and `redocly lint` finds no error (redocly.yaml says
which rules are kept). The tools come from clients/package-lock.json (`make clients`, which
`make test` runs)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = ROOT / "openapi" / "openapi.yaml"
BIN = ROOT / "clients" / "node_modules" / ".bin"
QUIET = {**os.environ, "REDOCLY_TELEMETRY": "off", "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true", "NO_COLOR": "1"}

USAGE = """\
import type { components, operations } from "./casesvc";

type Problem = components["schemas"]["Problem"];
type Case = components["schemas"]["Case"];

// a 409 of a transition, as the service sends it: extension members named and unnamed
const refused: Problem = {
  type: "/problems/invalid-transition", title: "Conflict", status: 409, detail: "Not allowed.",
  instance: "/api/v1/cases/1/transitions", current: "open", to: "completed", allowed: ["active", "withdrawn"],
  a_member_added_later: true,
};
const moves: string[] = refused.allowed ?? [];
const invalid: Problem = {
  type: "/problems/validation-error", title: "Unprocessable Content", status: 422, detail: "Invalid.",
  instance: "/api/v1/youths", errors: { national_id: ["Not a valid national id."] },
};
const messages: string[] = invalid.errors?.["national_id"] ?? [];
const holder: string | undefined = ({} as Problem).existing_id;

// what the service always sends is there: no `undefined` to check for
function describe(c: Case): string {
  const closed: string | null = c.closed_at;
  return `${c.id} ${c.status} v${c.version} ${c.participants.join(",")} ${closed ?? "open"}`;
}
// @ts-expect-error a case without its id and status is not a Case
const incomplete: Case = { youth_id: "y" };

// operations by their operationId, with their bodies and answers
type Created = operations["createCase"]["responses"][201]["content"]["application/json"];
type CreateBody = operations["createCase"]["requestBody"] extends { content: { "application/json": infer B } }
  ? B : never;
const body: CreateBody = { youth_id: "y", origin: "police", participants: ["health"] };
type Conflict = operations["transitionReaction"]["responses"][409]["content"]["application/problem+json"];
const conflictMoves = (p: Conflict): string[] => p.allowed ?? [];
type TokenBody = NonNullable<operations["issueToken"]["requestBody"]>["content"]["application/x-www-form-urlencoded"];
const login: TokenBody = { grant_type: "password", username: "user.police", password: "secret" };
// @ts-expect-error the grant types are an enumeration
const badGrant: TokenBody = { grant_type: "implicit" };
type Unavailable = operations["listCases"]["responses"][503]["content"]["application/problem+json"];
const retry = (p: Unavailable): number => p.status;
type Key = NonNullable<operations["createNote"]["parameters"]["header"]>["Idempotency-Key"];
const key: Key = "2f9c1c0e";

export const used = [moves, messages, holder, describe, incomplete, body, conflictMoves, login, badGrant, retry, key,
                     {} as Created];
"""


@pytest.fixture(scope="module")
def tools():
    if not (BIN / "tsc").exists():
        if os.environ.get("CI"):
            pytest.fail("the npm tools are not installed: `make clients` (make test runs it)")
        pytest.skip("the npm tools are not installed: run `make clients` (make test does)")
    return BIN


def _run(args, cwd, timeout=120):
    done = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=QUIET)
    return done.returncode, done.stdout + done.stderr


@pytest.fixture(scope="module")
def types(tools, tmp_path_factory) -> Path:
    """A directory holding casesvc.d.ts, generated from the document."""
    where = tmp_path_factory.mktemp("typescript")
    code, out = _run([tools / "openapi-typescript", DOCUMENT, "--output", where / "casesvc.d.ts"], where)
    assert code == 0, out
    return where


def test_typescript_types_from_the_document_type_check_strictly(tools, types):
    tmp_path = types
    (tmp_path / "usage.ts").write_text(USAGE)
    code, out = _run(
        [
            tools / "tsc",
            "--strict",
            "--noEmit",
            "--target",
            "es2022",
            "--module",
            "esnext",
            "--moduleResolution",
            "bundler",
            tmp_path / "usage.ts",
        ],
        tmp_path,
    )
    assert code == 0, out


def test_strict_typescript_refuses_what_the_document_forbids(tools, types):
    """The check can fail: a program that leaves out what a Case always has does not compile."""
    tmp_path = types
    (tmp_path / "wrong.ts").write_text(
        'import type { components } from "./casesvc";\n'
        'type Case = components["schemas"]["Case"];\n'
        'const c: Case = { id: "x" };\n'
        "export const status: number = c.status;\n"
    )
    code, out = _run(
        [
            tools / "tsc",
            "--strict",
            "--noEmit",
            "--target",
            "es2022",
            "--module",
            "esnext",
            "--moduleResolution",
            "bundler",
            tmp_path / "wrong.ts",
        ],
        tmp_path,
    )
    assert code != 0, out
    assert "wrong.ts" in out and ("TS2739" in out or "TS2740" in out), out  # properties missing in the literal


def test_redocly_lint_finds_no_error(tools):
    code, out = _run(
        [tools / "redocly", "lint", DOCUMENT, "--config", ROOT / "redocly.yaml", "--format", "stylish"], ROOT
    )
    assert code == 0, out
    assert " error " not in out, out
