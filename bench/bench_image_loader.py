#!/usr/bin/python3
"""torchvision's side of bench_image_loader: ImageFolder + DataLoader over the JPEG
folder the C++ benchmark wrote (argv[1]), with the same transforms (resize to 224 x 224,
ToTensor, ImageNet Normalize) and batch size, num_workers 0, 1, 2, best of 2 passes
(interleaved). Prints one line per setting (images/s and CPU milliseconds per image,
worker processes included) and the 2-vs-1 worker ratio. Then the share of an evaluation
loop's time (resnet18 over the first argv[2] images, default 256) spent waiting for
data, with num_workers 1 and 2."""
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


def evaluation(folder, workers, samples):
    """The share of an evaluation loop's wall time spent waiting for the next batch:
    resnet18 (random weights) in eval mode under no_grad over the first `samples`
    images, as the C++ side's Evaluator. Returns (images/s, waiting share)."""
    from torchvision import models
    transform = transforms.Compose([
        transforms.Resize((224, 224)),
        transforms.ToTensor(),
        transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ])
    dataset = torch.utils.data.Subset(datasets.ImageFolder(folder, transform=transform), range(samples))
    loader = torch.utils.data.DataLoader(dataset, batch_size=64, num_workers=workers)
    model = models.resnet18().eval()
    waiting = 0.0
    start = time.perf_counter()
    with torch.no_grad():
        batches = iter(loader)
        while True:
            asked = time.perf_counter()
            try:
                inputs, _ = next(batches)
            except StopIteration:
                waiting += time.perf_counter() - asked
                break
            waiting += time.perf_counter() - asked
            torch.softmax(model(inputs), 1).max(1)
    wall = time.perf_counter() - start
    return samples / wall, waiting / wall


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
    samples = min(int(sys.argv[2]) if len(sys.argv) > 2 else 256, len(datasets.ImageFolder(folder)))
    for workers in (1, 2):
        rate, share = min((evaluation(folder, workers, samples) for _ in range(2)), key=lambda r: r[1])
        print(f"torchvision_eval model=resnet18 workers={workers} images={samples} images_per_s={rate:.1f} "
              f"waiting_for_data={100 * share:.1f}%")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
