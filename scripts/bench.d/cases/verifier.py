"""Case `verifier`: µs per verification with criterion (the verifier crate's
`verify` bench: quicprobe's verify and analyse, and BoringSSL's floors, one
signature and every signature a chain needs), next to aioquic's own
verify_certificate (scripts/aioquic/verify_bench.py) on the same chains.
"""

import json

from harness import (AIOQUIC_VERIFY, CERTS, TARGET_DIR, VENV_PYTHON, Bench, Failed, cmdline, ratio, run,
                     say, summarise)


def measure(bench: Bench) -> None:
    cmd = ["cargo", "bench", "--locked", "-p", "quicprobe-verifier", "--bench", "verify", "--",
           "--noplot", *bench.cfg["criterion"]]
    say("verifier: " + cmdline(cmd))
    r = run(cmd, timeout=900)
    if r["rc"] != 0:
        raise Failed(f"cargo bench failed: {r['stderr'][-800:]}")
    crit = TARGET_DIR / "criterion"

    def criterion(name: str) -> dict:
        est = json.loads((crit / name / "new/estimates.json").read_text())
        sample = json.loads((crit / name / "new/sample.json").read_text())
        per_iter = [t / i / 1000 for t, i in zip(sample["times"], sample["iters"])]
        return {
            "us": {"median": est["median"]["point_estimate"] / 1000, "min": min(per_iter),
                   "max": max(per_iter), "n": len(per_iter),
                   "mean": est["mean"]["point_estimate"] / 1000},
        }

    for label, scenario in (("ecdsa-p256-3-certs", "full-chain"), ("rsa4096-5-certs", "rsa4096-chain")):
        for what in ("verify", "analyse"):
            e = bench.entry(f"verifier/{label}/quicprobe-{what}", "verifier", f"quicprobe-{what}", None,
                            cmdline(cmd), scenario=scenario, benchmark=f"{what}/{label}",
                            runs_are="criterion samples (each the mean of many iterations)")
            e["summary"] = criterion(f"{what}_{label}")
            e["failed_runs"] = 0
        peer_cmd = [VENV_PYTHON, AIOQUIC_VERIFY, CERTS, scenario, bench.cfg["aioquic_verify_seconds"]]
        e = bench.entry(f"verifier/{label}/aioquic", "verifier", "aioquic", None, cmdline(peer_cmd), scenario=scenario)
        for i in range(bench.cfg["runs"]):
            def once() -> dict:
                r = run(peer_cmd, timeout=60)
                if r["rc"] != 0:
                    raise Failed(r["stderr"][-300:])
                return {"us": float(r["stdout"].split()[1])}
            bench.attempt(e, once)
        summarise(e)
        bench.ratios.append(ratio(f"verifier/{label}/aioquic-vs-quicprobe",
                                  f"µs per verification, {label}: aioquic / quicprobe verify",
                                  e, bench.get(f"verifier/{label}/quicprobe-verify"), "us"))
    # BoringSSL's floors: one signature check, and every check a chain needs.
    floors = [("one-signature", label) for label in ("ecdsa-p256", "rsa4096")] + \
             [("chain-signatures", label) for label in ("ecdsa-p256-3-certs", "rsa4096-5-certs")]
    for what, label in floors:
        e = bench.entry(f"verifier/{label}/{what}", "verifier", f"boringssl-{what}", None,
                        cmdline(cmd), benchmark=f"{what}/{label}",
                        runs_are="criterion samples (each the mean of many iterations)")
        e["summary"] = criterion(f"{what}_{label}")
        e["failed_runs"] = 0
    # Issue 18: quicprobe's verify over BoringSSL's own checks of the same
    # chain's signatures, back to back in the same criterion run (target ≤ 1.05×).
    for label in ("ecdsa-p256-3-certs", "rsa4096-5-certs"):
        bench.ratios.append(ratio(f"verifier/{label}/quicprobe-over-floor",
                                  f"µs per verification, {label}: quicprobe verify / BoringSSL's chain signatures",
                                  bench.get(f"verifier/{label}/quicprobe-verify"),
                                  bench.get(f"verifier/{label}/chain-signatures"), "us"))
