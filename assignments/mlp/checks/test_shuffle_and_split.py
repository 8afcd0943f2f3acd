import pytest

@pytest.mark.points(10)
def test_defined(student):
    pass
