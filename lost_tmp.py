import time
t0=time.time()
def main():
    t0=time.time()
    import tests.test_dask_average as T
    from fastgd import _dask as fdask, LogisticRegression
    import distributed
    fdask.POLL_S=0.25
    X, y = T.make_data("binary", n=90, seed=2)
    with T._cluster() as cluster, distributed.Client(cluster) as client:
        print("up", time.time()-t0)
        data = T.placed(client, T.CHUNKS, T.OWNERS, X, y)
        est = LogisticRegression(max_iter=2, batch_size=5, tol=None, dask_mode="average", backend="numpy").fit(*data)
        print("fit", time.time()-t0)
        victim = sorted(client.nthreads())[1]
        client.run(T.die, workers=[victim], wait=False)
        try:
            est.fit(*data)
        except RuntimeError as e:
            print(e)
        print("raised", time.time()-t0)
    print("closed", time.time()-t0)
    
if __name__=="__main__":
    main()
