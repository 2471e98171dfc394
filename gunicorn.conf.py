import gc


def post_worker_init(worker):
    gc.collect()
    gc.freeze()
