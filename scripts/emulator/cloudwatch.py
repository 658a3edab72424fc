"""CloudWatch metrics as the AWS SDK for Rust asks for them: Smithy RPC v2 CBOR (`POST
/service/GraniteServiceVersion20100801/operation/<Operation>`, header `smithy-protocol:
rpc-v2-cbor`), which moto 5.2 does not answer (getmoto/moto#9195). PutMetricData and
GetMetricStatistics, on moto's own CloudWatch backend: a test says what RDS would report (a
replica's `ReplicaLag`) and the functions read it as they would in AWS. Errors follow the
protocol: status 400, a CBOR map with `__type` and `message`."""

from datetime import datetime, timezone

import cbor2
from moto.cloudwatch.models import cloudwatch_backends

PREFIX = "/service/GraniteServiceVersion20100801/operation/"


def naive_utc(t) -> datetime:
    """moto keeps metric times as naive UTC; CBOR brings epoch seconds (tag 1) or datetimes."""
    if isinstance(t, (int, float)):
        t = datetime.fromtimestamp(t, timezone.utc)
    return t.astimezone(timezone.utc).replace(tzinfo=None) if t.tzinfo else t


def reply(start_response, status: str, body: dict) -> list:
    data = cbor2.dumps(body, datetime_as_timestamp=True, timezone=timezone.utc)
    start_response(
        status,
        [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor"), ("Content-Length", str(len(data)))],
    )
    return [data]


def answer(path: str, raw: bytes, region: str, account: str, start_response) -> list:
    operation = path[len(PREFIX):]
    request = cbor2.loads(raw) if raw else {}
    backend = cloudwatch_backends[account][region]
    if operation == "PutMetricData":
        data = []
        for d in request.get("MetricData", []):
            d = dict(d)
            if "Timestamp" in d:
                d["Timestamp"] = naive_utc(d["Timestamp"])
            data.append(d)
        backend.put_metric_data(request.get("Namespace", ""), data)
        return reply(start_response, "200 OK", {})
    if operation == "GetMetricStatistics":
        stats = request.get("Statistics", [])
        found = backend.get_metric_statistics(
            request["Namespace"],
            request["MetricName"],
            naive_utc(request["StartTime"]),
            naive_utc(request["EndTime"]),
            int(request["Period"]),
            stats,
            request.get("Dimensions", []),
            request.get("Unit"),
        )
        points = []
        for s in found:
            point = {"Timestamp": s.timestamp.replace(tzinfo=timezone.utc)}
            for stat in stats:
                value = s.get_statistics_for_type(stat)
                if value is not None:
                    point[stat] = float(value)
            points.append(point)
        return reply(start_response, "200 OK", {"Label": request["MetricName"], "Datapoints": points})
    return reply(
        start_response,
        "400 Bad Request",
        {"__type": "com.amazonaws.cloudwatch#UnknownOperationException", "message": f"{operation}: not emulated"},
    )
