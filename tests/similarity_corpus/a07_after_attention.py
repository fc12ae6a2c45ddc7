"""Four honest answers to 07_after_attention, written independently from the released notebook's instructions
(the format is in tests/similarity_corpus/__init__.py). The scans differ as students' would: Blelloch's
up-sweep and down-sweep (s1), Hillis and Steele's doubling with identity padding (s2), chunks scanned inside
and then across (s3), and an odd-even reduction by recursion (s4); none loops over the time steps."""

HONEST = {
    "s1": {
        "attention_forward": '''
def attention_forward(q, k, v, causal):
    N, T, d = q.shape
    S = k.shape[1]
    out = np.zeros((N, T, v.shape[2]))
    A = np.zeros((N, T, S))
    for n in range(N):
        P = q[n] @ k[n].T / np.sqrt(d)  # (T, S)
        if causal:
            for t in range(T):
                P[t, t + 1:] = -np.inf  # no peeking at later keys
        P = P - P.max(axis=1, keepdims=True)
        E = np.exp(P)
        A[n] = E / E.sum(axis=1, keepdims=True)
        out[n] = A[n] @ v[n]
    return out, (q, k, v, A)
''',
        "attention_backward": '''
def attention_backward(dout, cache):
    q, k, v, A = cache
    scale = q.shape[-1] ** -0.5
    dq, dk, dv = np.zeros_like(q), np.zeros_like(k), np.zeros_like(v)
    for n in range(q.shape[0]):
        dv[n] = A[n].T @ dout[n]
        dA = dout[n] @ v[n].T
        row = (dA * A[n]).sum(axis=1)
        dP = A[n] * (dA - row[:, None])
        dq[n] = scale * dP @ k[n]
        dk[n] = scale * dP.T @ q[n]
    return dq, dk, dv
''',
        "scan_forward": '''
def scan_forward(a, b):
    N, T, D = b.shape
    size = 1
    while size < T:
        size *= 2
    # pad to a power of two with the identity map (1, 0)
    A = np.ones((N, size, D))
    B = np.zeros((N, size, D))
    A[:, :T] = a
    B[:, :T] = b
    # up-sweep: the right node of each pair takes the composition of its whole block
    step = 1
    while step < size:
        right = np.arange(2 * step - 1, size, 2 * step)
        left = right - step
        B[:, right] = A[:, right] * B[:, left] + B[:, right]
        A[:, right] = A[:, right] * A[:, left]
        step *= 2
    # down-sweep: every position ends with the composition of the steps BEFORE it (exclusive)
    A[:, size - 1] = 1.0
    B[:, size - 1] = 0.0
    step = size // 2
    while step >= 1:
        right = np.arange(2 * step - 1, size, 2 * step)
        left = right - step
        Al, Bl = A[:, left], B[:, left]
        Ar, Br = A[:, right], B[:, right]
        A[:, left], B[:, left] = Ar, Br
        A[:, right], B[:, right] = Al * Ar, Al * Br + Bl
        step //= 2
    # the state before step t is B (h_0 = 0), then one more step
    return a * B[:, :T] + b
''',
    },
    "s2": {
        "attention_forward": '''
def attention_forward(q, k, v, causal):
    d = q.shape[-1]
    logits = np.einsum("ntd,nsd->nts", q, k) / np.sqrt(d)
    if causal:
        T, S = logits.shape[-2:]
        future = np.triu(np.ones((T, S), dtype=bool), k=1)
        logits[:, future] = -np.inf
    m = np.max(logits, axis=-1, keepdims=True)
    w = np.exp(logits - m)
    w = w / np.sum(w, axis=-1, keepdims=True)
    out = np.einsum("nts,nse->nte", w, v)
    return out, (q, k, v, w)
''',
        "attention_backward": '''
def attention_backward(dout, cache):
    q, k, v, A = cache
    c = 1 / np.sqrt(q.shape[-1])
    grad_v = np.einsum("nts,nte->nse", A, dout)
    grad_A = np.einsum("nte,nse->nts", dout, v)
    inner = np.einsum("nts,nts->nt", A, grad_A)[..., None]
    grad_P = A * grad_A - A * inner
    grad_q = c * np.einsum("nts,nsd->ntd", grad_P, k)
    grad_k = c * np.einsum("nts,ntd->nsd", grad_P, q)
    return grad_q, grad_k, grad_v
''',
        "scan_forward": '''
def scan_forward(a, b):
    T = a.shape[1]
    coef, acc = a, b
    rounds = int(np.ceil(np.log2(T))) if T > 1 else 0
    for r in range(rounds):
        shift = 2 ** r
        # the pair `shift` positions earlier, or the identity (1, 0) where there is none
        prev_coef = np.concatenate([np.ones_like(coef[:, :shift]), coef[:, :-shift]], axis=1)
        prev_acc = np.concatenate([np.zeros_like(acc[:, :shift]), acc[:, :-shift]], axis=1)
        acc = coef * prev_acc + acc
        coef = coef * prev_coef
    return acc
''',
    },
    "s3": {
        "attention_forward": '''
def softmax_rows(x):
    x = x - x.max(axis=-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=-1, keepdims=True)


def attention_forward(q, k, v, causal):
    N, T, d = q.shape
    S = k.shape[1]
    P = np.matmul(q, k.transpose(0, 2, 1)) * (1.0 / d ** 0.5)
    if causal:
        t_idx = np.arange(T).reshape(T, 1)
        s_idx = np.arange(S).reshape(1, S)
        M = np.where(s_idx > t_idx, -np.inf, 0.0)
        P = P + M[None]
    A = softmax_rows(P)
    return np.matmul(A, v), (q, k, v, A)
''',
        "attention_backward": '''
def attention_backward(dout, cache):
    q, k, v, A = cache
    N, T, S = A.shape
    dv = np.matmul(A.transpose(0, 2, 1), dout)
    dA = np.matmul(dout, v.transpose(0, 2, 1))
    # the softmax of each row: dP = J dA with the Jacobian J = diag(a) - a a^T
    dP = np.empty_like(A)
    for n in range(N):
        for t in range(T):
            a_row = A[n, t]
            J = np.diag(a_row) - np.outer(a_row, a_row)
            dP[n, t] = J @ dA[n, t]
    dP /= np.sqrt(q.shape[2])
    dq = np.matmul(dP, k)
    dk = np.matmul(dP.transpose(0, 2, 1), q)
    return dq, dk, dv
''',
        "scan_forward": '''
def doubling(x, y, axis):
    """Inclusive scan of the maps h -> x h + y along `axis`, in log2 rounds."""
    x = np.moveaxis(x, axis, 0).copy()
    y = np.moveaxis(y, axis, 0).copy()
    j = 1
    while j < x.shape[0]:
        y[j:] = x[j:] * y[:-j] + y[j:]
        x[j:] = x[j:] * x[:-j]
        j *= 2
    return np.moveaxis(x, 0, axis), np.moveaxis(y, 0, axis)


def scan_forward(a, b):
    N, T, D = a.shape
    C = 8  # chunk length
    chunks = -(-T // C)
    pad = chunks * C - T
    # identity steps (a = 1, b = 0) at the end fill the last chunk
    a2 = np.concatenate([a, np.ones((N, pad, D))], axis=1).reshape(N, chunks, C, D)
    b2 = np.concatenate([b, np.zeros((N, pad, D))], axis=1).reshape(N, chunks, C, D)
    # 1) every chunk at once: the composition of its first steps
    ga, gb = doubling(a2, b2, axis=2)
    # 2) the chunks' whole maps, scanned across the chunks: the state at the end of each chunk
    _, ends = doubling(ga[:, :, -1], gb[:, :, -1], axis=1)
    start = np.concatenate([np.zeros((N, 1, D)), ends[:, :-1]], axis=1)  # state entering each chunk
    h = ga * start[:, :, None, :] + gb
    return h.reshape(N, chunks * C, D)[:, :T]
''',
    },
    "s4": {
        "attention_forward": '''
def attention_forward(q, k, v, causal):
    N, T, d = q.shape
    S = k.shape[1]
    weights = np.zeros((N, T, S))
    for t in range(T):
        seen = min(t + 1, S) if causal else S  # keys query t may look at
        s = np.einsum("nd,nsd->ns", q[:, t], k[:, :seen]) / np.sqrt(d)
        s -= s.max(axis=1, keepdims=True)
        e = np.exp(s)
        weights[:, t, :seen] = e / e.sum(axis=1, keepdims=True)
    out = weights @ v
    return out, (q, k, v, weights)
''',
        "attention_backward": '''
def attention_backward(dout, cache):
    q, k, v, A = cache
    g_v = np.swapaxes(A, -1, -2) @ dout  # (N, S, dv)
    g_attn = dout @ np.swapaxes(v, -1, -2)  # (N, T, S)
    weighted = A * g_attn
    g_scores = (weighted - A * weighted.sum(-1, keepdims=True)) / np.sqrt(k.shape[-1])
    return g_scores @ k, np.einsum("nts,ntd->nsd", g_scores, q), g_v
''',
        "scan_forward": '''
def scan_forward(a, b):
    T = b.shape[1]
    if T == 1:
        return b.copy()
    # merge the steps two by two, (0, 1), (2, 3), ...: the second after the first
    first_a, first_b = a[:, 0:T - 1:2], b[:, 0:T - 1:2]
    second_a, second_b = a[:, 1::2], b[:, 1::2]
    # a recurrence half as long, whose states are the states at the odd positions
    odd = scan_forward(second_a * first_a, second_a * first_b + second_b)
    h = np.empty_like(b)
    h[:, 1::2] = odd
    # an even position is one step after the odd one before it
    h[:, 0] = b[:, 0]
    h[:, 2::2] = a[:, 2::2] * odd[:, :(T - 1) // 2] + b[:, 2::2]
    return h
''',
    },
}
