"""Notebooks shaped like the course's real ones (see ../shared/seeds/): around the exercise code of a synthetic
submission, what a student's notebook carries: the install cell with shell escapes and a tracking-form import,
imports of matplotlib, torchvision, tqdm, ipywidgets and IPython, magics, figure settings, plotting and seeding
helpers, a data download, top-level calls, plots and training loops, markdown between cells, and the outputs of a
run (retina PNGs, tqdm progress on stderr), as a student who ran the notebook submits it."""

from __future__ import annotations

import base64
import random

import nbformat

INSTALL = """# @title Install dependencies
!pip install git+https://github.com/NeuromatchAcademy/evaltools --quiet
!pip install torchvision --quiet
from evaltools.airtable import AirtableForm

# Generate airtable form
atform = AirtableForm('appn7VdPRseSoMXEG', 'W1D3_T1', 'https://portal.neuromatchacademy.org/api/redirect/to/')
"""
IMPORTS = """# Imports
import os
import random
import hashlib
import requests

import torch
import numpy as np
import matplotlib.pyplot as plt

import torch.nn as nn
import torch.optim as optim
import torch.nn.functional as F
import torchvision
from torchvision import datasets, transforms
from torch.utils.data import DataLoader, TensorDataset
from tqdm.auto import tqdm
from IPython.display import display
%matplotlib inline
"""
FIGURE_SETTINGS = """# @title Figure settings
import logging
logging.getLogger('matplotlib.font_manager').disabled = True
import ipywidgets as widgets       # Interactive display
%config InlineBackend.figure_format = 'retina'
plt.style.use("https://raw.githubusercontent.com/NeuromatchAcademy/content-creation/main/nma.mplstyle")
"""
PLOTTING = '''# @title Plotting functions
def imshow(img):
    """Helper function to plot an unnormalised image."""
    img = img / 2 + 0.5     # Unnormalize
    npimg = img.numpy()
    plt.imshow(np.transpose(npimg, (1, 2, 0)))
    plt.axis(False)
    plt.show()


def plot_curve(values, xlabel="epoch", ylabel="loss", title=""):
    """Helper function to plot a training curve."""
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(values)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    plt.tight_layout()
    plt.show()


def plot_decision_map(X, y, model, M=100):
    """Helper function to plot a classifier's decision regions over a 2D grid."""
    xs = torch.linspace(X[:, 0].min(), X[:, 0].max(), M)
    grid = torch.stack(torch.meshgrid(xs, xs, indexing="ij"), -1).reshape(-1, 2)
    with torch.no_grad():
        labels = model(grid).argmax(1).reshape(M, M)
    plt.imshow(labels.T, origin="lower", alpha=0.4)
    plt.scatter(X[:, 0], X[:, 1], c=y, s=4)
    plt.show()
'''
SEEDING = '''# @title Set random seed
def set_seed(seed=None, seed_torch=True):
    """Controls randomness: random, NumPy and torch."""
    if seed is None:
        seed = np.random.choice(2 ** 32)
    random.seed(seed)
    np.random.seed(seed)
    if seed_torch:
        torch.manual_seed(seed)
        torch.cuda.manual_seed_all(seed)
        torch.cuda.manual_seed(seed)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    print(f'Random seed {seed} has been set.')


def seed_worker(worker_id):
    """DataLoader will reseed workers following randomness in multi-process data loading."""
    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)


def set_device():
    """Set the device. CUDA if available, CPU otherwise."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device != "cuda":
        print("GPU is not enabled in this notebook.")
    else:
        print("GPU is enabled in this notebook.")
    return device


SEED = 2021
set_seed(seed=SEED)
DEVICE = set_device()
'''
DOWNLOAD = """# @title Data retrieval
fname = "data.npz"
url = "https://osf.io/683xc/download"
expected_md5 = "a7e2b8e9bf4b0c1e9a4b55b0d7d8a1c2"

if not os.path.isfile(fname):
    try:
        r = requests.get(url)
    except requests.ConnectionError:
        print("!!! Failed to download data !!!")
    else:
        if r.status_code != requests.codes.ok:
            print("!!! Failed to download data !!!")
        elif hashlib.md5(r.content).hexdigest() != expected_md5:
            print("!!! Data download appears corrupted !!!")
        else:
            with open(fname, "wb") as fid:
                fid.write(r.content)
"""
# Top-level use of each exercise as the tutorials have it: calls, prints, plots and training loops.
USES = {
    "mlp": {
        "approximate_function": """N_train = 10
x_train = torch.linspace(0, 2 * np.pi, N_train).view(-1, 1)
y_train = torch.sin(x_train)
y_hat, relu_acts, x = approximate_function(x_train, y_train)
plt.plot(x, y_hat, label='estimated'); plt.plot(x, torch.sin(x), label='truth'); plt.legend(); plt.show()
""",
        "Net": """input = torch.zeros((100, 2))
net = Net(actv='LeakyReLU(0.1)', input_feature_num=2, hidden_unit_nums=[100, 10, 5], output_feature_num=1)
y = net(input)
print(f'The output shape is {y.shape} for an input of shape {input.shape}')
""",
        "cross_entropy_loss": """labels = torch.tensor([0, 1])
x = torch.tensor([[10.0, 1.0, -1.0, -20.0], [10.0, 10.0, 2.0, -10.0]])
our_loss = cross_entropy_loss(x, labels).item()
pytorch_loss = F.cross_entropy(x, labels).item()
print(f'Our CE loss: {our_loss:0.8f}, Pytorch CE loss: {pytorch_loss:0.8f}')
print(f'Difference: {np.abs(our_loss - pytorch_loss):0.8f}')
""",
        "shuffle_and_split": """K, N = 4, 400
t = torch.linspace(0, 1, N)
X = torch.zeros(K * N, 2)
y = torch.zeros(K * N)
for k in range(K):
    X[k * N:(k + 1) * N, 0] = t * (torch.sin(2 * np.pi / K * (2 * t + k)) + 0.01 * torch.randn(N))
    X[k * N:(k + 1) * N, 1] = t * (torch.cos(2 * np.pi / K * (2 * t + k)) + 0.01 * torch.randn(N))
    y[k * N:(k + 1) * N] = k
X_test, y_test, X_train, y_train = shuffle_and_split_data(X, y, seed=SEED)
net = Net('ReLU()', X_train.shape[1], [128], K)
criterion = nn.CrossEntropyLoss()
optimizer = optim.Adam(net.parameters(), lr=1e-3)
losses = []
for epoch in tqdm(range(200)):
    optimizer.zero_grad()
    loss = criterion(net(X_train), y_train.long())
    loss.backward()
    optimizer.step()
    losses.append(loss.item())
plot_curve(losses, title='spiral classification')
plot_decision_map(X_test, y_test, net)
""",
    },
    "decoding": {
        "DeepNetReLU": """n_neurons, n_stimuli = 200, 400
resp_all = torch.rand(n_stimuli, n_neurons)
stimuli_all = torch.linspace(0, 360, n_stimuli).view(-1, 1)
net = DeepNetReLU(n_neurons, 10)
out = net(resp_all)
print(out.shape)
""",
        "train": """set_seed(SEED)
net = DeepNetReLU(n_neurons, 20)
loss_fn = nn.MSELoss()
train_loss = train(net, loss_fn, resp_all, stimuli_all, n_iter=100, learning_rate=1e-4)
plot_curve(train_loss, xlabel="iteration", ylabel="mean squared error")
""",
        "regularized_loss": """out = net(resp_all)
print(regularized_loss(out, stimuli_all, list(net.parameters()), L2_penalty=1e-4))
""",
    },
    "spiking": {
        "LIF": """x = torch.linspace(-1, 5, 200)
plt.plot(x, lif(x)); plt.xlabel('input current'); plt.ylabel('rate (Hz)'); plt.show()
""",
        "LIFNet": """model = LIFNet()
train_x = torch.randn(64, 1, 28, 28)
train_y = torch.randint(0, 10, (64,))
loader = DataLoader(TensorDataset(train_x, train_y), batch_size=16, shuffle=True, worker_init_fn=seed_worker)
optimizer = optim.SGD(model.parameters(), lr=0.01)
for epoch in tqdm(range(2)):
    for xb, yb in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        optimizer.step()
print(f"loss {loss.item():.3f}")
""",
    },
}
PNG_BYTES = 60_000  # a retina matplotlib figure is some 40-150 kB of PNG


def _png(rng: random.Random) -> str:
    header = b"\x89PNG\r\n\x1a\n"
    return base64.b64encode(header + rng.randbytes(PNG_BYTES)).decode()


def _code(source: str, rng: random.Random, plots: bool = False, progress: bool = False) -> nbformat.NotebookNode:
    outputs = []
    if progress:
        bar = "".join(f"\r{p:3d}%|{'#' * (p // 10):10}| {p * 2}/200 [00:0{p // 50}<00:00]" for p in range(0, 101, 5))
        outputs.append(nbformat.v4.new_output("stream", name="stderr", text=bar + "\n"))
    if plots:
        data = {"image/png": _png(rng), "text/plain": "<Figure size 1200x800 with 1 Axes>"}
        outputs.append(nbformat.v4.new_output("display_data", data=data, metadata={"needs_background": "light"}))
    cell = nbformat.v4.new_code_cell(source, execution_count=rng.randint(1, 80))
    cell.outputs = outputs
    return cell


def realistic_notebook(assignment: str, header: str, exercises: dict[str, str], seed: int) -> bytes:
    """A submitted course notebook around `exercises` ({exercise id: the student's code}), in spec order."""
    rng = random.Random(seed)
    md = nbformat.v4.new_markdown_cell
    cells = [
        md(f"# Tutorial: {assignment}\n\n**Content creators:** ...\n\n## Tutorial objectives\n" + "Lorem ipsum. " * 60),
        md("# Setup"),
        _code(INSTALL, rng),
        _code(IMPORTS + header, rng),
        _code(FIGURE_SETTINGS, rng),
        _code(PLOTTING, rng),
        _code(SEEDING, rng),
        _code(DOWNLOAD, rng),
    ]
    uses = USES[assignment]
    for i, (exercise, code) in enumerate(exercises.items(), start=1):
        use = uses.get(exercise, "")
        cells.append(md(f"## Coding Exercise {i}: {exercise}\n\n" + "The statement of the exercise. " * 30))
        cells.append(_code(code, rng))
        if use:
            cells.append(md("Test your function:"))
            cells.append(_code(use, rng, plots="plt" in use or "plot_" in use, progress="tqdm" in use))
        cells.append(md("```\nSample output\n```\n" + "Think! discussion. " * 20))
    nb = nbformat.v4.new_notebook()
    nb.cells = cells
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python", "version": "3.11.4"},
        "colab": {"provenance": [], "toc_visible": True},
        "widgets": {"application/vnd.jupyter.widget-state+json": {"state": {}}},
    }
    return nbformat.writes(nb).encode()
