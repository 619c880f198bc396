#!/usr/bin/env python3
"""Writes csrc/methods.h: every operations method Google defines for Vertex AI, by name shape and
REST version, from the two machine-readable definitions Google publishes (their union):

  - the Google Cloud SDK's generated apitools clients
    (lib/googlecloudsdk/generated_clients/apis/aiplatform/{v1,v1beta1}/aiplatform_*_client.py:
    flat_path and method_id of each method);
  - the npm package @google-cloud/aiplatform (bench/package.json pins the version; `cd bench &&
    npm install`), whose clients carry every operations HTTP rule in lroOptions.httpRules
    (build/src/{v1,v1beta1}/*_client.js).

The table only takes methods away from Google's generic grammar (csrc/request.c), so where the data
is odd the reading errs towards allowing: v1's ListOperations bindings written as GET
{name=X/operations/*}:wait count as the list of X, and a method a version's own prefix lacks but its
clients bind under /ui/ is given back to a shape that version knows. The header says each.

Usage: python3 scripts/gen_methods.py [SDK_ROOT] [NPM_PACKAGE_DIR] > csrc/methods.h  (make methods)
"""
import glob
import json
import os
import re
import sys

SDK = sys.argv[1] if len(sys.argv) > 1 else "/usr/lib/google-cloud-sdk"
NPM = sys.argv[2] if len(sys.argv) > 2 else "bench/node_modules/@google-cloud/aiplatform"
VERSIONS = ("v1", "v1beta1")
CALLS = ("get", "cancel", "delete", "wait", "list")  # the bit order of csrc/methods.h
SELECTOR = {"GetOperation": "get", "CancelOperation": "cancel", "DeleteOperation": "delete",
            "WaitOperation": "wait", "ListOperations": "list"}
EXPECT = {"get": "GET", "cancel": "POST", "delete": "DELETE", "wait": "POST", "list": "GET"}


def fail(msg):
    sys.stderr.write("gen_methods: " + msg + "\n")
    sys.exit(1)


# Bindings whose path does not fit their method: Google's v1 ListOperations binds GET
# {name=X/operations/*}:wait for a few X (featureGroups, featureOnlineStores...), where v1beta1 binds
# {name=X}/operations. Read as the list of X (the table must never refuse what Google may serve),
# and named in the header.
MISFITS = []
UI_SKIPPED = set()  # /ui/ bindings whose path does not fit their method
UI_ADDED = []


def fits(call, path):
    if call == "list":
        return path.endswith("/operations")
    if call in ("cancel", "wait"):
        return path.endswith(":" + call)
    return ":" not in path


def ui_fits(call, path):
    """Whether a /ui/ binding is one of call's on an operation shape (some /ui/ ones are not)."""
    tail = {"list": "/operations", "cancel": "/operations/*:cancel", "wait": "/operations/*:wait"}
    return (re.fullmatch(r"[A-Za-z0-9*/]+(:cancel|:wait)?", path) is not None and "**" not in path
            and fits(call, path) and path.endswith(tail.get(call, "/operations/*")))


def shape_of(call, path):
    """The operation name shape of a method's path template: ids as '*', no ':verb'."""
    path = re.sub(r"\{[^}]*\}", "*", path)  # SDK: {projectsId}
    if call == "cancel":
        if not path.endswith(":cancel"):
            fail("cancel path without :cancel: " + path)
        path = path[: -len(":cancel")]
    elif call == "wait":
        if not path.endswith(":wait"):
            fail("wait path without :wait: " + path)
        path = path[: -len(":wait")]
    elif call == "list":
        if not path.endswith("/operations"):
            fail("list path without /operations: " + path)
        path = path + "/*"
    if ":" in path or "**" in path or not re.fullmatch(r"[A-Za-z0-9*/]+", path):
        fail("unexpected path template: " + path)
    if not path.endswith("/operations/*"):
        fail("not an operation shape: " + path)
    return path


def from_sdk(table, version):
    path = os.path.join(SDK, "lib/googlecloudsdk/generated_clients/apis/aiplatform", version,
                        "aiplatform_%s_client.py" % version)
    with open(path) as f:
        text = f.read()
    n = 0
    for m in re.finditer(r"flat_path='([^']*)',\s*http_method='([A-Z]+)',\s*method_id='([^']*)'", text):
        flat, verb, mid = m.groups()
        call = re.search(r"\.operations\.(\w+)$", mid)
        if not call or call.group(1) not in EXPECT:
            continue
        call = call.group(1)
        if verb != EXPECT[call]:
            fail("%s: %s is %s" % (path, mid, verb))
        if not flat.startswith(version + "/"):
            fail("%s: %s" % (path, flat))
        # the SDK names a template {projectsId}: same shape once ids are '*'
        table.setdefault(shape_of(call, flat[len(version) + 1:]), set()).add(call)
        n += 1
    return n


def from_npm(table, version):
    files = sorted(glob.glob(os.path.join(NPM, "build/src", version, "*_client.js")))
    if not files:
        fail("no clients under %s (cd bench && npm install)" % os.path.join(NPM, "build/src", version))
    rules, ui = set(), set()
    for path in files:
        with open(path) as f:
            text = f.read()
        parts = re.split(r"selector: '", text)
        for part in parts[1:]:
            sel = re.match(r"google\.longrunning\.Operations\.(\w+)'", part)
            if not sel or sel.group(1) not in SELECTOR:
                continue
            call = SELECTOR[sel.group(1)]
            for verb, url in re.findall(r"\b(get|post|delete): '([^']*)'", part):
                prefix = "/" + version + "/"
                if url.startswith("/ui/"):
                    prefix = "/ui/"
                if not url.startswith(prefix):
                    continue  # the other version
                m = re.fullmatch(r"\{name=([^}]*)\}(.*)", url[len(prefix):])
                if prefix == "/ui/":  # kept apart: see below
                    if verb.upper() == EXPECT[call] and m and ui_fits(call, m.group(1) + m.group(2)):
                        ui.add((call, m.group(1) + m.group(2)))
                    else:
                        UI_SKIPPED.add((call, url))
                    continue
                if verb.upper() != EXPECT[call]:
                    fail("%s: %s %s" % (path, verb, url))
                if not m:
                    fail("%s: %s" % (path, url))
                template = m.group(1) + m.group(2)
                rules.add((call, template))
    n = 0
    for call, template in sorted(rules):
        if not fits(call, template):
            if call != "list" or not template.endswith("/operations/*:wait"):
                fail("%s: %s binding %s" % (version, call, template))
            MISFITS.append("%s %s %s" % (version, call, template))
            template = template[: -len("/*:wait")]
        table.setdefault(shape_of(call, template), set()).add(call)
        n += 1
    # The same clients bind the methods under /ui/ (the console's prefix of the same service) too,
    # and there some a version's own prefix lacks (v1beta1: get, cancel, wait and list of
    # tuningJobs operations). They give methods back to a shape the version's own bindings know,
    # never make a shape known (the table must not refuse what Google may serve).
    for call, template in sorted(ui):
        shape = shape_of(call, template)
        if shape in table and call not in table[shape]:
            table[shape].add(call)
            UI_ADDED.append("%s %s %s" % (version, call, shape))
            n += 1
    return n


def main():
    with open(os.path.join(SDK, "VERSION")) as f:
        sdk_version = f.read().strip()
    with open(os.path.join(NPM, "package.json")) as f:
        npm_version = json.load(f)["version"]
    tables, counts = {}, {}
    for v in VERSIONS:
        tables[v] = {}
        counts[v] = (from_sdk(tables[v], v), from_npm(tables[v], v))
    shapes = sorted(set(tables["v1"]) | set(tables["v1beta1"]))
    out = []
    w = out.append
    w("/* methods.h: GENERATED by scripts/gen_methods.py (make methods) -- do not edit.")
    w(" * Every operations method Google defines for Vertex AI, by operation name shape (a '*' for each id)")
    w(" * and REST version: the union of the Google Cloud SDK %s (generated apitools clients" % sdk_version)
    w(" * aiplatform v1, v1beta1) and npm @google-cloud/aiplatform %s (lroOptions.httpRules)." % npm_version)
    for v in VERSIONS:
        w(" * %s: %d shapes, %d methods (SDK %d, npm %d)." % (
            v, len(tables[v]), sum(len(c) for c in tables[v].values()), counts[v][0], counts[v][1]))
    for m in MISFITS:
        w(" * Read as a list of its parent (the path does not fit the method): %s." % m.replace("*", "{}"))
    for m in UI_ADDED:
        w(" * Given back by a /ui/ binding: %s." % m.replace("*", "{}"))
    w(" * Left out: %d /ui/ bindings that are not their method's on an operation shape." % len(UI_SKIPPED))
    w(" * Regenerate: cd bench && npm install; cd .. && make methods (needs python3, the SDK, npm).")
    w(" * Used by csrc/request.c: a known shape only takes methods away (docs/contract.md). */")
    w("#ifndef VX_METHODS_H")
    w("#define VX_METHODS_H")
    w("")
    w("enum { VX_M_GET = 1, VX_M_CANCEL = 2, VX_M_DELETE = 4, VX_M_WAIT = 8, VX_M_LIST = 16 };")
    w("")
    w("/* A shape and its methods in v1 and in v1beta1 (0: the shape is not that version's). */")
    w("typedef struct {")
    w("  const char *shape;")
    w("  unsigned char v1, v1beta1;")
    w("} vx_method_shape;")
    w("")
    w("static const vx_method_shape vx_method_shapes[] = {")

    def bits(calls):
        if not calls:
            return "0"
        return " | ".join("VX_M_" + c.upper() for c in CALLS if c in calls)

    for s in shapes:
        w('    {"%s",' % s)
        w("     %s," % bits(tables["v1"].get(s)))
        w("     %s}," % bits(tables["v1beta1"].get(s)))
    w("    {0, 0, 0}};")
    w("")
    w("#endif")
    sys.stdout.write("\n".join(out) + "\n")


main()
