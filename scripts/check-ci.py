#!/usr/bin/env python3
"""Checks .gitlab-ci.yml as GitLab would run it, as far as that is possible
without GitLab: reads the expanded pipeline (`gitlab-ci-local --preview`,
which resolves `extends:` and `!reference`), then

1. tools: every command a job's before_script/script runs must be in its
   image, or be installed earlier in the same job (apt-get install, rustup
   component add, npm install) or by a project script it runs first
   (scripts/deps.sh). A job running `cargo fmt` on the official rust image
   without `rustup component add rustfmt` fails here, as it would in GitLab;
2. jobs per pipeline kind: the jobs `gitlab-ci-local --list` selects for a
   merge request, a default-branch push and a tag (rules evaluated by
   gitlab-ci-local with CI_PIPELINE_SOURCE, CI_COMMIT_BRANCH,
   CI_COMMIT_TAG set accordingly) must be the expected sets: MRs build but
   do not push images, tags push tagged images, only the default branch
   deploys dev, deploy:prod is manual;
3. the deploy jobs go through scripts/deploy.sh apply (rollout status +
   automatic rollback), and the images reach the registry as
   $REGISTRY/newsroom-<component>:$TAG.

    scripts/check-ci.py GITLAB_CI_LOCAL

IMAGE_TOOLS lists what each image ships, from the images' own documentation
(the official rust image: rustup's minimal profile, i.e. cargo, rustc and
rustup only, on buildpack-deps, which has apt-get, git, curl, gcc, make).
"""

import copy
import os
import re
import shlex
import subprocess
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SHELL = {"echo", "set", "export", "cd", "test", "[", "true", "false", "for", "do", "done", "if", "then",
         "fi", "else", "case", "esac", "while", "read", "printf", "exit", "mkdir", "cp", "rm", "cat", "ls",
         "sed", "grep", "awk", "tar", "sh", "mv", "env", "sort", "head", "tail", "tee", "command"}
DEBIAN = SHELL | {"bash", "apt-get", "dpkg", "python3", "curl", "git", "find", "xargs"}
IMAGE_TOOLS = {
    # buildpack-deps:bookworm + rustup --profile minimal (no rustfmt, no clippy)
    "rust": DEBIAN | {"cargo", "rustc", "rustup", "gcc", "make", "cc"},
    # buildpack-deps:bookworm + Node.js
    "node": DEBIAN | {"node", "npm", "npx"},
    # Alpine with the docker CLI, buildx and compose plugins; no bash
    "docker": SHELL | {"docker", "apk"},
    # alpine/k8s: kubectl, kustomize, helm, bash, curl, jq
    "alpine/k8s": SHELL | {"bash", "kubectl", "kustomize", "helm", "curl", "jq", "apk"},
}
# What an installation step adds: apt packages and rustup components.
PACKAGE_TOOLS = {
    "protobuf-compiler": {"protoc"}, "mariadb-client": {"mariadb", "mysql"},
    "redis-server": {"redis-server", "redis-cli"}, "prometheus": {"promtool"},
    "etcd-server": {"etcd"}, "etcd-client": {"etcdctl"}, "wrk": {"wrk"}, "chromium": {"chromium"},
    "nodejs": {"node"}, "npm": {"npm"}, "rsync": {"rsync"}, "python3-venv": {"python3 -m venv"},
}
COMPONENT_TOOLS = {"rustfmt": {"cargo fmt", "rustfmt"}, "clippy": {"cargo clippy", "clippy-driver"}}
# Project scripts: what they install for later commands, and what they need
# from the image themselves (read from each script: the tools they call).
SCRIPT_INSTALLS = {
    "scripts/deps.sh": {"protoc", "etcd", "etcdctl", "wrk", "promtool", "chromium", "mariadb",
                        "redis-server", "redis-cli", "llvm-profdata"},
}
SCRIPT_NEEDS = {
    # each apt-installs what else it needs (or, check-deploy.sh, pip/npm
    # installs into its cache), so they need bash and apt-get from the image
    "scripts/deps.sh": {"bash", "apt-get"},
    "scripts/test.sh": {"bash", "cargo", "cargo fmt", "cargo clippy", "protoc", "etcd", "mariadb"},
    "scripts/check-deploy.sh": {"bash", "apt-get", "python3"},
    "scripts/deploy.sh": {"bash", "kubectl", "awk", "sed", "mktemp"},
    # instrumented build, a stack of its own under wrk, llvm-profdata
    "scripts/pgo.sh": {"bash", "cargo", "protoc", "etcd", "wrk", "llvm-profdata"},
}


def image_tools(image):
    for prefix, tools in IMAGE_TOOLS.items():
        if image.split(":")[0] == prefix or image.split(":")[0].startswith(prefix + "/"):
            return set(tools) | {"mktemp", "awk", "sed"}
    return None


def commands(line):
    """The commands of one script line, as 'tool' or 'tool subcommand'."""
    out = []
    for part in re.split(r"\|\||&&|[|;]", line):
        try:
            words = shlex.split(part, comments=True)
        except ValueError:
            words = part.split()
        words = [w for w in words if not re.match(r"^[A-Z_][A-Z0-9_]*=", w)]
        if not words:
            continue
        tool = words[0]
        if tool in ("cargo", "rustup", "docker", "python3") and len(words) > 1:
            out.append((tool, words[1], words))
        else:
            out.append((tool, None, words))
    return out


def check_tools(name, job, problems):
    image = job.get("image")
    image = image.get("name") if isinstance(image, dict) else image
    available = image_tools(image or "")
    if available is None:
        problems.append(f"{name}: image {image!r} is not in IMAGE_TOOLS; say what it ships")
        return
    lines = [l for key in ("before_script", "script") for l in (job.get(key) or [])]
    for line in lines:
        for tool, sub, words in commands(" ".join(str(line).split("\n"))):
            if tool == "apt-get" and sub is None and "install" in words:
                for pkg in words[words.index("install") + 1:]:
                    available |= PACKAGE_TOOLS.get(pkg, {pkg})
                continue
            if tool == "rustup" and sub == "component":
                for comp in words[3:]:
                    available |= COMPONENT_TOOLS.get(comp, set())
                continue
            if tool.startswith("scripts/"):
                missing = sorted(SCRIPT_NEEDS.get(tool, {"bash"}) - available)
                if missing:
                    problems.append(f"{name}: {tool} needs {missing}, which image {image} lacks "
                                    "and nothing before it installs")
                available |= SCRIPT_INSTALLS.get(tool, set())
                continue
            want = f"{tool} {sub}" if tool == "cargo" and sub in ("fmt", "clippy") else tool
            # Compiling the workspace runs proto/build.rs, which calls protoc.
            if tool == "cargo" and sub in ("build", "check", "clippy", "test", "run") and "protoc" not in available:
                problems.append(f"{name}: `cargo {sub}` compiles proto/, which needs protoc; image {image} "
                                "lacks it and nothing before it installs it")
            if want not in available:
                problems.append(f"{name}: runs `{want}`, which image {image} lacks and nothing before "
                                "it installs")


def listed_jobs(gcl, variables):
    args = [gcl, "--list-csv", "--ignore-predefined-vars", ",".join(variables)]
    for k, v in variables.items():
        args += ["--variable", f"{k}={v}"]
    out = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"gitlab-ci-local --list-csv failed:\n{out.stderr}{out.stdout}")
    jobs = {}
    # gitlab-ci-local prints notes (no git remote here, …) before the table.
    lines = [l for l in out.stdout.splitlines() if l.strip()]
    lines = lines[next(i for i, l in enumerate(lines) if l.startswith("name;")):]
    header = lines[0].split(";")
    for line in lines[1:]:
        row = dict(zip(header, line.split(";")))
        jobs[row["name"]] = row
    return jobs


PIPELINES = {
    "merge request": (
        {"CI_PIPELINE_SOURCE": "merge_request_event", "CI_COMMIT_BRANCH": "",
         "CI_MERGE_REQUEST_IID": "1", "CI_DEFAULT_BRANCH": "main", "CI_COMMIT_TAG": ""},
        {"lint:fmt", "lint:clippy", "lint:deploy", "test", "images:build"},
    ),
    "default branch": (
        {"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "main", "CI_DEFAULT_BRANCH": "main",
         "CI_COMMIT_TAG": ""},
        {"lint:fmt", "lint:clippy", "lint:deploy", "test", "pgo:profile", "images:push", "deploy:dev",
         "deploy:prod", "rollback:dev", "rollback:prod"},
    ),
    "tag": (
        {"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "", "CI_COMMIT_TAG": "v1.2.3",
         "CI_DEFAULT_BRANCH": "main"},
        {"lint:fmt", "lint:clippy", "lint:deploy", "test", "pgo:profile", "images:push", "deploy:prod",
         "rollback:prod"},
    ),
    "other branch": (
        {"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "feature", "CI_DEFAULT_BRANCH": "main",
         "CI_COMMIT_TAG": ""},
        {"lint:fmt", "lint:clippy", "lint:deploy", "test"},
    ),
}
MANUAL = {"deploy:prod", "rollback:dev", "rollback:prod"}


def job_problems(jobs, variables):
    """Tools per image, and what the build and deploy jobs must do."""
    problems = []
    for name, job in sorted(jobs.items()):
        job = dict(job)
        image = job.get("image")
        image = image.get("name") if isinstance(image, dict) else image
        job["image"] = re.sub(r"\$(\w+)", lambda m: str(variables.get(m.group(1), m.group(0))), image or "")
        check_tools(name, job, problems)
    for name in ("deploy:dev", "deploy:prod"):
        script = " ".join(jobs.get(name, {}).get("script", []))
        if "scripts/deploy.sh apply" not in script:
            problems.append(f"{name} must deploy through scripts/deploy.sh apply (rollout status, rollback)")
    push = " ".join(jobs.get("images:push", {}).get("script", []))
    build = " ".join(jobs.get("images:build", {}).get("script", []))
    if "--push" not in push:
        problems.append("images:push does not push")
    if "--push" in build or "--load" in build:
        problems.append("images:build (merge requests) must build only")
    # What ships is profile-guided: images:push takes pgo:profile's file.
    needs = [n.get("job") if isinstance(n, dict) else n for n in jobs.get("images:push", {}).get("needs", [])]
    if "pgo:profile" in jobs and ("pgo:profile" not in needs or "PGO_PROFILE=pgo/merged.profdata" not in push):
        problems.append("images:push must need pgo:profile and build with PGO_PROFILE=pgo/merged.profdata")
    return problems


def without(jobs, name, key, needle):
    """A copy of the jobs with the lines of jobs[name][key] containing needle dropped."""
    mutated = copy.deepcopy(jobs)
    mutated[name][key] = [l for l in mutated[name].get(key, []) if needle not in str(l)]
    return mutated


def main():
    gcl = sys.argv[1]
    preview = subprocess.run([gcl, "--preview"], cwd=ROOT, capture_output=True, text=True)
    if preview.returncode != 0:
        raise SystemExit(f"gitlab-ci-local --preview failed:\n{preview.stderr}{preview.stdout}")
    text = preview.stdout
    pipeline = yaml.safe_load(text[text.index("---"):] if "---" in text else text)
    variables = pipeline.get("variables", {})
    jobs = {k: v for k, v in pipeline.items()
            if isinstance(v, dict) and ("script" in v) and not k.startswith(".")}
    problems = job_problems(jobs, variables)
    print(f"tools: {len(jobs)} jobs, each image provides or installs what its script runs"
          if not problems else "tools: " + "; ".join(problems))

    # The checks above must catch what GitLab would: each mutation must add a problem.
    mutations = {
        "lint:fmt without `rustup component add rustfmt`": without(jobs, "lint:fmt", "before_script", "rustfmt"),
        "lint:clippy without `rustup component add clippy`":
            without(jobs, "lint:clippy", "before_script", "clippy"),
        "lint:clippy without protoc": without(jobs, "lint:clippy", "before_script", "protobuf-compiler"),
        "test without rustfmt/clippy (scripts/test.sh runs both)":
            without(jobs, "test", "before_script", "rustup"),
        "images:build pushing": copy.deepcopy(jobs),
        "images:push without the profile": without(jobs, "images:push", "script", "PGO_PROFILE"),
        "pgo:profile without scripts/deps.sh pgo (llvm-profdata, etcd, wrk)":
            without(jobs, "pgo:profile", "script", "deps.sh"),
    }
    mutations["images:build pushing"]["images:build"]["script"] = ["docker buildx bake --push"]
    for what, mutated in mutations.items():
        new = [p for p in job_problems(mutated, variables) if p not in problems]
        if new:
            print(f"mutation caught: {what} → {new[0]}")
        else:
            problems.append(f"mutation missed: {what}")

    for kind, (env, expected) in PIPELINES.items():
        listed = listed_jobs(gcl, env)
        names = set(listed)
        if names != expected:
            problems.append(f"{kind} pipeline runs {sorted(names)}; expected {sorted(expected)} "
                            f"(extra {sorted(names - expected)}, missing {sorted(expected - names)})")
        for name in names & MANUAL:
            if listed[name].get("when") != "manual":
                problems.append(f"{kind} pipeline: {name} must be manual, is {listed[name].get('when')}")
        print(f"{kind}: {len(names)} jobs: {', '.join(sorted(names))}")

    # Tags produce tagged images: the workflow sets TAG to the git tag in tag
    # pipelines (the commit SHA otherwise), and docker-bake.hcl reads TAG.
    tag_rule = [r for r in pipeline.get("workflow", {}).get("rules", [])
                if r.get("if", "").strip() == "$CI_COMMIT_TAG"]
    if not tag_rule or tag_rule[0].get("variables", {}).get("TAG") != "$CI_COMMIT_TAG":
        problems.append("workflow: a tag pipeline must set TAG: $CI_COMMIT_TAG")
    if variables.get("TAG") != "$CI_COMMIT_SHA" or variables.get("REGISTRY") != "$CI_REGISTRY_IMAGE":
        problems.append("variables: REGISTRY must be $CI_REGISTRY_IMAGE and TAG $CI_COMMIT_SHA by default")
    else:
        print("images: $CI_REGISTRY_IMAGE/newsroom-<component>:$CI_COMMIT_SHA, or :$CI_COMMIT_TAG in tag pipelines")
    deploy_sh = open(os.path.join(ROOT, "scripts/deploy.sh")).read()
    for needle in ("rollout status", "rollout undo", "ROLLING BACK"):
        if needle not in deploy_sh:
            problems.append(f"scripts/deploy.sh no longer contains {needle!r}")
    bake = open(os.path.join(ROOT, "docker-bake.hcl")).read()
    services = sorted(d for d in os.listdir(os.path.join(ROOT, "services"))
                      if os.path.isfile(os.path.join(ROOT, "services", d, "Cargo.toml")))
    for component in ["gateway", *services, "loadgen"]:
        if f'"${{REGISTRY}}/newsroom-{component}:${{TAG}}"' not in bake:
            problems.append(f"docker-bake.hcl does not tag {component} as $REGISTRY/newsroom-{component}:$TAG")
    for p in problems:
        print(f"FAIL {p}")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
