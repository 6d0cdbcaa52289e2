"""The bench's numbers as the table `python -m src.bench` prints, and the section of
benchmarks/RESULTS.md that a measuring command writes (--results)."""

from pathlib import Path


def _fit_and_loader(r: dict) -> list[str]:
    return [
        f"(a) training loop, fp32, {r['steps']} steps per run",
        f"  bare PyTorch loop                {r['bare_ms_per_step']:10.1f} ms/step",
        f"  fit (metrics every 10 steps)     {r['fit_ms_per_step']:10.1f} ms/step",
        f"  overhead ratio                   {r['overhead_ratio']:10.3f}",
        f"  fit, every set's own metrics     {r['fit_all_sets_ms_per_step']:10.1f} ms/step",
        f"  overhead ratio, every set's      {r['overhead_ratio_all_sets']:10.3f}",
        "",
        f"(b) loader, {r['images']:,} images per pass, crop (padding 4) + flip",
        f"  TensorLoader                     {r['tensor_loader_images_per_s']:10,.0f} images/s",
        f"  torchvision, {r['workers']} workers            "
        f"{r['torchvision_images_per_s']:10,.0f} images/s",
        f"  loader speedup                   {r['loader_speedup']:10.2f}",
    ]


def _ladder(r: dict) -> list[str]:
    lines = [
        "(c) the fast mode one switch at a time; CIFAR-10 epoch (50,000 images) extrapolated",
        f"  bf16: {r['bf16']['precision']} ({r['bf16']['why']}; --bf16 {r['bf16']['bf16_rung']})",
    ]
    for rung in r["switches"]:
        gain = "" if rung["gain"] is None else f", x{rung['gain']:.2f} over the rung before"
        label = "fp32 eager (the fit of (a))" if rung["rung"] == "fp32" else f"+ {rung['rung']}"
        lines.append(f"  {label:<32} {rung['images_per_s']:10,.0f} images/s{gain}")
        if "compile_s" in rung:
            lines.append(f"  {'':<32} first step with compilation {rung['compile_s']:.1f} s, "
                         f"{rung['graphs']} graphs")
    lines.append(f"  fast mode: {r['fast_images_per_s']:,.0f} images/s, epoch "
                 f"{r['fast_epoch_s']:.1f} s (fp32 eager: epoch {r['fp32_epoch_s']:.1f} s), "
                 f"speedup {r['fast_speedup']:.2f}")
    if r["recompiles"] is not None:
        lines.append(f"  recompiles after the first step {r['recompiles']}")
    return lines


def table(r: dict) -> str:
    head = [f"{r['device_name']} ({r['device']}, {r['threads']} threads), torch {r['torch']}, "
            f"{r['date']}",
            f"PreResNet32, batch {r['batch_size']}, synthetic 3x32x32 images; each contender "
            f"the mean of {r['rounds']} runs after warm-up", ""]
    resolution = [
        "(d) one update of fit, fp32, by image size (the embedded digits are 8x8)",
        f"  3x32x32                          {r['fit_ms_per_step']:10.1f} ms/step",
        f"  3x8x8                            {r['fit_8px_ms_per_step']:10.1f} ms/step",
        f"  resolution speedup               {r['resolution_speedup']:10.2f}",
    ]
    mini = ["", *_miniature(r["mini"])] if r["mini"] else []
    return "\n".join([*head, *_fit_and_loader(r), "", *_ladder(r), "", *resolution, *mini])


def _miniature(mini: dict) -> list[str]:
    sizes = mini["ms_per_update"]
    lines = [f"(e) the miniature's update (budget=mini): batch {mini['batch_size']}, fp32"]
    lines += [f"  3x{s}x{s}{'':<{29 - 2 * len(str(s))}}{ms:10.1f} ms/update"
              for s, ms in sizes.items()]
    lines.append(f"  cost of 16x16 over 8x8           {mini['cost_16px_over_8px']:10.2f}")
    lines += [f"  3x8x8, bare PyTorch loop         {mini['bare_8px_ms_per_update']:10.1f}"
              " ms/update",
              f"  3x8x8, {mini['seeds_stacked']} seeds stacked (vmap)  "
              f"{mini['stacked_8px_ms_per_seed_update']:10.1f} ms/update a seed",
              f"  stacking speedup at 8x8          {mini['stacking_speedup_8px']:10.2f}"]
    for precision, layouts in mini["layouts_8px_one_thread_ms_per_update"].items():
        for layout, ms in layouts.items():
            label = f"3x8x8, {precision}, {'NHWC' if layout == 'channels_last' else 'NCHW'}"
            lines.append(f"  {label + ', 1 thread':<31}{ms:10.1f} ms/update")
        lines.append(f"  {f'channels_last speedup, {precision}':<31}"
                     f"{layouts['contiguous'] / layouts['channels_last']:10.2f}")
    if mini["compiled_8px_ms_per_update"] is not None:
        lines += [f"  3x8x8, torch.compile             {mini['compiled_8px_ms_per_update']:10.1f}"
                  " ms/update",
                  f"  compile speedup at 8x8           {mini['compile_speedup_8px']:10.2f}",
                  f"  {'':<32} first run with compilation "
                  f"{mini['compile_8px_first_run_s']:.1f} s"]
    return lines


def write_section(path: Path, heading: str, text: str) -> None:
    """Replace the section `heading` (up to the next `## ` heading) of a markdown file, or put
    it before the file's first section when there is none."""
    old = path.read_text().splitlines() if path.is_file() else ["# Benchmark results", ""]
    start = next((i for i, line in enumerate(old) if line.strip() == heading), None)
    if start is None:
        start = end = next((i for i, line in enumerate(old) if line.startswith("## ")),
                           len(old))
    else:
        end = next((i for i in range(start + 1, len(old)) if old[i].startswith("## ")),
                   len(old))
    new = old[:start] + text.rstrip("\n").splitlines() + [""] + old[end:]
    path.write_text("\n".join(new).rstrip("\n") + "\n")


def results_section(r: dict, command: str) -> str:
    """The bench's section of RESULTS.md: the command, the machine and its table."""
    return "\n".join(["## Bench", "", f"`{command}` (written by it: run it again to replace "
                      f"this section). {r['device_name']}, {r['cpu_count']} cores, torch "
                      f"{r['torch']}, {r['date']}.", "", "```", table(r), "```", ""])
