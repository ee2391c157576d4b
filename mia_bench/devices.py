"""Which GPU a sweep job uses.

A scheduler (Slurm, submitit) hands each job its GPU through CUDA_VISIBLE_DEVICES, so the job
sees one device and `device=auto` means it. Local launchers (joblib, submitit_local without
GPU allocation) start every job with all GPUs visible; then job number j takes GPU
j mod (number of GPUs), which spreads a sweep round-robin.
"""

from __future__ import annotations


def job_device(device: str, job_num: int | None, n_gpus: int) -> str:
    """The device string a job should use: `device` unchanged unless it is "auto", the job
    belongs to a sweep (`job_num` set) and several GPUs are visible."""
    if device != "auto" or job_num is None or n_gpus <= 1:
        return device
    return f"cuda:{int(job_num) % n_gpus}"


def pick_job_device(device: str, job_num: int | None) -> str:
    """`job_device` with the GPUs this process can see; selects that GPU as torch's current
    one, so code that says plain "cuda" lands on it too."""
    import torch

    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    chosen = job_device(device, job_num, n)
    if chosen.startswith("cuda:"):
        torch.cuda.set_device(torch.device(chosen))
    return chosen
