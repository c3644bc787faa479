from __future__ import annotations

import pytest
from support.registry import Registry

from wheeldock.oci import remote
from wheeldock.oci.image import Image
from wheeldock.oci.publish import publish

#: nothing here may touch the real cache (remote.read and publish default to it)
pytestmark = pytest.mark.usefixtures("cache_in_tmp")


@pytest.mark.integration
def test_publish_to_a_registry(registry: Registry, runnable_image: Image) -> None:
    ref = registry.ref("wheeldock-test/publish", "v1")
    result = publish(runnable_image, ref)
    assert result.ref == ref and result.digest == runnable_image.digest
    assert remote.read(ref).digest == runnable_image.digest
