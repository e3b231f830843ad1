"""Driving the course's apps in the browser: check that an app rendered, and
change every control of every app of a notebook, comparing the page with what
the app's own ``update()``/``summary()`` compute (see apps.py)."""

from __future__ import annotations

import warnings
from pathlib import Path

import apps
import catalog
import jlab


def check_rendered(lab, app) -> list[dict]:
    """The app's container, controls and figure are visible; returns the controls."""
    assert app.is_visible(), "the .coursekit-app container is not visible"
    controls = lab.controls(app)
    assert controls, "the app shows no controls"
    for i in range(len(controls)):
        assert lab.control_locator(app, i).is_visible(), f"control {controls[i]} is not visible"
    img = app.locator(".widget-output img").first
    lab.wait_for(lambda: img.count() and img.is_visible(), "the app's figure to show")
    width = img.evaluate("i => i.naturalWidth")
    assert width > 100, f"the app's figure is {width} px wide"
    return controls


def exercise_every_app(lab, nb: Path) -> None:
    """Every coursekit app of the notebook, already run in ``lab``, renders;
    changing each control redraws it, and the summary equals what the app's
    update()/summary() compute for the values the page now shows."""
    found = lab.apps()
    lab.wait_for(lambda: found.count() > 0, "a .coursekit-app container")
    classes = apps.app_classes()
    for k in range(found.count()):
        app = found.nth(k)
        name = apps.app_name(app.get_attribute("class") or "")
        assert name in classes, f"app #{k}: no coursekit app class named {name!r}"
        cls = classes[name]
        lab.focus = app  # failure screenshots show this app
        controls = check_rendered(lab, app)

        # The notebook may pass constructor arguments: take the literal ones
        # found in its code, and keep the set that reproduces the summary shown.
        # Apps whose constructor needs non-literal arguments (a trained model)
        # cannot be rebuilt here: for those only the summary check is left out.
        candidates = catalog.constructor_calls(nb, cls.__name__) + [{}]
        shown = lab.summary_html(app)
        ref, tried, built = None, [], 0
        for kwargs in candidates:
            try:
                inst = apps.instantiate(cls, kwargs)
            except TypeError as exc:
                tried.append(f"{kwargs}: {exc}")
                continue
            built += 1
            want = apps.expected_summary(inst, apps.params_from_browser(inst, controls))
            tried.append(f"{kwargs}: {want!r}")
            if lab.normalise_html(want) == shown:
                ref = inst
                break
        if built == 0:
            warnings.warn(f"{nb.name}: app {name!r}: summary not compared with "
                          f"{cls.__name__}.summary(update(...)): no constructor call with "
                          f"literal arguments ({'; '.join(tried)})", stacklevel=1)
        else:
            assert ref is not None, (
                f"app {name!r}: the summary shown is not {cls.__name__}.summary(update(...)) "
                f"for the control values shown, with any constructor arguments found in "
                f"the notebook:\nshown: {shown!r}\n" + "\n".join(tried))

        cache: dict = {}
        last: dict = {}

        def summary_matches(ref=ref, app=app, cache=cache, last=last):
            params = apps.params_from_browser(ref, lab.controls(app))
            key = repr(sorted(params.items()))
            if key not in cache:
                cache[key] = lab.normalise_html(apps.expected_summary(ref, params))
            last.update(params=params, want=cache[key], shown=lab.summary_html(app))
            return last["shown"] == last["want"]

        def mismatch(did, last=last, cls=cls):
            return (f"the summary to equal {cls.__name__}.summary(update(**{last['params']})) "
                    f"after: {did}\nshown: {last['shown']!r}\nwant:  {last['want']!r}")

        for i, control in enumerate(controls):
            control = lab.controls(app)[i]  # fresh values (other controls may move it)
            if control["disabled"]:
                continue
            img_before, summary_before = lab.img_src(app), lab.summary_html(app)
            did = lab.change(app, i, control)
            if control["kind"] != "button":
                # Compare value and readout: aria-valuenow is rounded (0.05 steps
                # can leave it unchanged) while the readout shows the slider's format.
                seen = (img_before, summary_before)
                lab.wait_for(lambda i=i, c=control, a=app: lab.controls(a)[i] != c,
                             lambda i=i, did=did, a=app, c=control: f"the control to take a "
                             f"new value after: {did} (was {c}, shows {lab.controls(a)[i]})")
                lab.wait_for(lambda s=seen, a=app: (lab.img_src(a), lab.summary_html(a)) != s,
                             f"the figure or summary to change after: {did}")
            lab.wait_kernel_idle(settle=0.5)  # then wait_for polls until the summary matches
            if ref is not None:
                lab.wait_for(summary_matches, lambda did=did: mismatch(did),
                             timeout=jlab.SETTLED_TIMEOUT)
            lab.assert_no_errors()
            assert lab.img_src(app), f"the figure disappeared after: {did}"
    lab.assert_no_console_errors()
