#!/usr/bin/python3
"""torchvision's side of bench_image_loader: ImageFolder + DataLoader over the JPEG
folder the C++ benchmark wrote (argv[1]), with the same transforms (resize to 224 x 224,
ToTensor, ImageNet Normalize) and batch size, num_workers 0, 1, 2, best of 2 passes
(interleaved). Prints one line per setting (images/s and CPU milliseconds per image,
worker processes included) and the 2-vs-1 worker ratio."""
import resource
import sys
import time

try:
    import torch
    from torchvision import datasets, transforms
except ImportError as error:  # the benchmark still reports ood's figures
    print(f"SKIPPED torchvision: {error}")
    sys.exit(0)


def cpu_seconds():
    """User + system time of this process and its reaped children (the workers, which
    the DataLoader joins when a pass ends)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def one_pass(folder, workers):
    transform = transforms.Compose([
        transforms.Resize((224, 224)),
        transforms.ToTensor(),
        transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ])
    dataset = datasets.ImageFolder(folder, transform=transform)
    loader = torch.utils.data.DataLoader(dataset, batch_size=64, num_workers=workers)
    cpu_start = cpu_seconds()
    start = time.perf_counter()
    count = 0
    for inputs, _ in loader:
        count += inputs.shape[0]
    wall = time.perf_counter() - start
    return count / wall, (cpu_seconds() - cpu_start) * 1e3 / count


def main():
    folder = sys.argv[1]
    torch.set_num_threads(1)  # as the C++ side; DataLoader workers use 1 thread anyway
    best = {0: (0.0, 0.0), 1: (0.0, 0.0), 2: (0.0, 0.0)}
    for _ in range(2):
        for workers in (0, 1, 2):
            best[workers] = max(best[workers], one_pass(folder, workers))
    for workers in (0, 1, 2):
        rate, cpu_ms = best[workers]
        print(f"torchvision workers={workers} images_per_s={rate:.1f} cpu_ms_per_image={cpu_ms:.2f} "
              f"cores_used={rate * cpu_ms / 1e3:.2f}")
    print(f"torchvision ratio_2_vs_1={best[2][0] / best[1][0]:.2f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
