# homelab-twin STAND-IN boot hook, imported by homelab-twin.pth at interpreter start (Debian's own
# /usr/lib/python3.11/sitecustomize.py would shadow a sitecustomize here): `python3 -m
# vllm.entrypoints.openai.api_server ARGS` (the vllm role's entrypoint) first runs twin_vllm.main
# (parse with vLLM's parser, GPU start-up check, held memory), which execs the real API server on
# the CPU with HOMELAB_TWIN_STANDIN_CHECKED=1 set.
import os
import sys

if (os.environ.get("HOMELAB_TWIN_STANDIN_CHECKED") != "1"
        and list(getattr(sys, "orig_argv", [])[1:3]) == ["-m", "vllm.entrypoints.openai.api_server"]):
    sys.path.insert(0, "/opt/homelab-twin")
    try:
        import twin_vllm
        twin_vllm.main(list(sys.orig_argv[3:]))
    except SystemExit as exc:  # argparse's exit 2 / a refusal: leave with that status
        sys.stderr.flush()
        os._exit(exc.code if isinstance(exc.code, int) else 1)
    except BaseException:  # an error of the stand-in itself must not look like a start
        import traceback
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
