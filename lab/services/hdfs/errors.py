"""Hadoop's exceptions as WebHDFS reports them: RemoteException JSON with the Java class
name, and the HTTP status Hadoop's ExceptionHandler maps each class to."""

from __future__ import annotations


class HdfsException(Exception):
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


class IOException(HdfsException):
    pass


class FileNotFoundException(HdfsException):
    java = "java.io.FileNotFoundException"
    status = 404


class FileAlreadyExistsException(HdfsException):
    java = "org.apache.hadoop.fs.FileAlreadyExistsException"


class ParentNotDirectoryException(HdfsException):
    java = "org.apache.hadoop.fs.ParentNotDirectoryException"


class PathIsNotEmptyDirectoryException(HdfsException):
    java = "org.apache.hadoop.fs.PathIsNotEmptyDirectoryException"


class AccessControlException(HdfsException):
    java = "org.apache.hadoop.security.AccessControlException"


class SafeModeException(HdfsException):
    java = "org.apache.hadoop.hdfs.server.namenode.SafeModeException"


class AlreadyBeingCreatedException(HdfsException):
    java = "org.apache.hadoop.hdfs.protocol.AlreadyBeingCreatedException"


class LeaseExpiredException(HdfsException):
    java = "org.apache.hadoop.hdfs.server.namenode.LeaseExpiredException"


class ChecksumException(HdfsException):
    java = "org.apache.hadoop.fs.ChecksumException"


class BlockMissingException(HdfsException):
    java = "org.apache.hadoop.hdfs.BlockMissingException"


class NotReplicatedYetException(HdfsException):
    java = "org.apache.hadoop.hdfs.server.namenode.NotReplicatedYetException"


class RetriableException(HdfsException):
    java = "org.apache.hadoop.ipc.RetriableException"


class IllegalArgumentException(HdfsException):
    java = "java.lang.IllegalArgumentException"
    status = 400


class InvalidPathException(HdfsException):
    # A HadoopIllegalArgumentException, hence 400 like IllegalArgumentException.
    java = "org.apache.hadoop.fs.InvalidPathException"
    status = 400


class UnsupportedOperationException(HdfsException):
    java = "java.lang.UnsupportedOperationException"
    status = 400


def with_status(exc: HdfsException, status: int) -> HdfsException:
    """The same exception answered with another HTTP status (e.g. 409 for a checkpoint
    somebody else already uploaded)."""
    exc.status = status
    return exc


BY_NAME = {cls.__name__: cls for cls in HdfsException.__subclasses__()}


def from_json(obj: dict, fallback: str = "remote error") -> HdfsException:
    """Rebuild an exception received from another daemon, keeping its class."""
    remote = obj.get("RemoteException", {}) if isinstance(obj, dict) else {}
    cls = BY_NAME.get(remote.get("exception", ""), IOException)
    return cls(remote.get("message", fallback))
