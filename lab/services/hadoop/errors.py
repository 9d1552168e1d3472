"""Hadoop's exceptions as its REST APIs report them: RemoteException JSON with the Java
class name, and the HTTP status Hadoop's ExceptionHandler maps each class to. Shared by
the HDFS daemons that raise them and the clients (HDFS shell, YARN, MapReduce) that
rebuild them from a reply."""

from __future__ import annotations


class HadoopException(Exception):
    java = "java.io.IOException"
    status = 403  # Hadoop maps every IOException that is not FileNotFound to 403

    @property
    def name(self) -> str:
        return self.java.rsplit(".", 1)[1]

    def to_json(self) -> dict:
        return {
            "RemoteException": {
                "exception": self.name,
                "javaClassName": self.java,
                "message": str(self),
            }
        }


class IOException(HadoopException):
    pass


class FileNotFoundException(HadoopException):
    java = "java.io.FileNotFoundException"
    status = 404


class FileAlreadyExistsException(HadoopException):
    java = "org.apache.hadoop.fs.FileAlreadyExistsException"


class ParentNotDirectoryException(HadoopException):
    java = "org.apache.hadoop.fs.ParentNotDirectoryException"


class PathIsNotEmptyDirectoryException(HadoopException):
    java = "org.apache.hadoop.fs.PathIsNotEmptyDirectoryException"


class AccessControlException(HadoopException):
    java = "org.apache.hadoop.security.AccessControlException"


class SafeModeException(HadoopException):
    java = "org.apache.hadoop.hdfs.server.namenode.SafeModeException"


class AlreadyBeingCreatedException(HadoopException):
    java = "org.apache.hadoop.hdfs.protocol.AlreadyBeingCreatedException"


class ReplicaNotFoundException(HadoopException):
    java = "org.apache.hadoop.hdfs.server.datanode.ReplicaNotFoundException"


class RecoveryInProgressException(HadoopException):
    java = "org.apache.hadoop.hdfs.protocol.RecoveryInProgressException"


class LeaseExpiredException(HadoopException):
    java = "org.apache.hadoop.hdfs.server.namenode.LeaseExpiredException"


class ChecksumException(HadoopException):
    java = "org.apache.hadoop.fs.ChecksumException"


class BlockMissingException(HadoopException):
    java = "org.apache.hadoop.hdfs.BlockMissingException"


class NotReplicatedYetException(HadoopException):
    java = "org.apache.hadoop.hdfs.server.namenode.NotReplicatedYetException"


class RetriableException(HadoopException):
    java = "org.apache.hadoop.ipc.RetriableException"


class IllegalArgumentException(HadoopException):
    java = "java.lang.IllegalArgumentException"
    status = 400


class HadoopIllegalArgumentException(HadoopException):
    java = "org.apache.hadoop.HadoopIllegalArgumentException"
    status = 400


class AclException(HadoopException):
    java = "org.apache.hadoop.hdfs.protocol.AclException"


class NSQuotaExceededException(HadoopException):
    java = "org.apache.hadoop.hdfs.protocol.NSQuotaExceededException"


class DSQuotaExceededException(HadoopException):
    java = "org.apache.hadoop.hdfs.protocol.DSQuotaExceededException"


class SnapshotException(HadoopException):
    java = "org.apache.hadoop.hdfs.protocol.SnapshotException"


class SnapshotAccessControlException(HadoopException):
    java = "org.apache.hadoop.hdfs.protocol.SnapshotAccessControlException"


class InvalidPathException(HadoopException):
    # A HadoopIllegalArgumentException, hence 400 like IllegalArgumentException.
    java = "org.apache.hadoop.fs.InvalidPathException"
    status = 400


class UnsupportedOperationException(HadoopException):
    java = "java.lang.UnsupportedOperationException"
    status = 400


class ConnectException(HadoopException, ConnectionError):
    """A daemon that could not be reached at all; also an OSError, so callers that
    handle a refused connection the standard-library way still catch it."""

    java = "java.net.ConnectException"


def with_status(exc: HadoopException, status: int) -> HadoopException:
    """The same exception answered with another HTTP status (e.g. 409 for a checkpoint
    somebody else already uploaded)."""
    exc.status = status
    return exc


BY_NAME = {cls.__name__: cls for cls in HadoopException.__subclasses__()}


def from_json(obj: dict, fallback: str = "remote error") -> HadoopException:
    """Rebuild an exception received from another daemon, keeping its class."""
    remote = obj.get("RemoteException", {}) if isinstance(obj, dict) else {}
    cls = BY_NAME.get(remote.get("exception", ""), IOException)
    return cls(remote.get("message", fallback))
