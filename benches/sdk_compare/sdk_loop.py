"""The official Volcengine Python SDK's attach-only loop: THREADS threads,
each sending AttachKeyPair for its share of the instances, 100 a call.

Usage: sdk_loop.py PORT AK SK REGION INSTANCES THREADS
Prints the wall time in seconds.
"""

import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import volcenginesdkcore
import volcenginesdkecs

PORT, AK, SK, REGION, COUNT, THREADS = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6])

configuration = volcenginesdkcore.Configuration()
configuration.ak, configuration.sk, configuration.region = AK, SK, REGION
configuration.host = f"127.0.0.1:{PORT}"
configuration.scheme = "http"
volcenginesdkcore.Configuration.set_default(configuration)
api = volcenginesdkecs.ECSApi()

ids = [f"i-sdkcmp{i:07d}" for i in range(COUNT)]
calls = [ids[i:i + 100] for i in range(0, len(ids), 100)]


def attach(chunk):
    request = volcenginesdkecs.AttachKeyPairRequest(
        instance_ids=chunk, key_pair_name="kp-compare", client_token=str(uuid.uuid4()))
    answer = api.attach_key_pair(request)
    return sum(1 for d in answer.operation_details if d.error is None)


start = time.monotonic()
with ThreadPoolExecutor(THREADS) as pool:
    bound = sum(pool.map(attach, calls))
took = time.monotonic() - start
print(f"{took:.3f} {bound}")
