// Fapiao Vault: small behaviours, wired by data-attributes (no inline script: CSP script-src 'self').
// Money is never computed here: live totals come from the server (htmx).
(function () {
  "use strict";

  // A catalogue entry picked for a line fills that line's inputs.
  function fillLine(select) {
    var option = select.options[select.selectedIndex];
    var line = select.closest("[data-line]");
    if (!option || !option.value || !line) {
      return;
    }
    var prefix = select.name.replace(/product$/, "");
    // The form's one 含税/不含税 switch: the server put the entry's price on both bases.
    var basis = select.form && select.form.querySelector('input[name="prices"]:checked');
    var inclusive = basis && basis.value === "inclusive";
    var fields = {
      name: option.dataset.name,
      tax_code: option.dataset.taxCode,
      spec: option.dataset.spec,
      unit: option.dataset.unit,
      unit_price: inclusive ? option.dataset.priceInclusive : option.dataset.priceExclusive,
      tax_rate: option.dataset.taxRate
    };
    Object.keys(fields).forEach(function (key) {
      var input = line.querySelector('[name="' + prefix + key + '"]');
      if (input && fields[key] !== undefined && (key !== "unit_price" || fields[key] !== "")) {
        input.value = fields[key];
      }
    });
    var quantity = line.querySelector('[name="' + prefix + 'quantity"]');
    if (quantity && !quantity.value) {
      quantity.focus();
    }
  }

  // The 含税/不含税 switch renames every line's unit-price field at once (the server renders the
  // same label after a round trip; both texts come from it, translated).
  function relabelPrices(radio) {
    var fieldset = radio.closest("fieldset[data-label-inclusive]");
    if (!fieldset || !radio.form) {
      return;
    }
    var text = radio.value === "inclusive" ? fieldset.dataset.labelInclusive : fieldset.dataset.labelExclusive;
    radio.form.querySelectorAll('label[for^="f-lines-"][for$="-unit_price"]').forEach(function (label) {
      var first = label.firstChild;
      if (first && first.nodeType === Node.TEXT_NODE) {
        first.nodeValue = text;
      }
    });
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target && target.matches && target.matches("select[data-product-select]")) {
      fillLine(target);
    }
    if (target && target.matches && target.matches('input[type="radio"][name="prices"]')) {
      relabelPrices(target);
    }
  });

  // Print buttons.
  document.addEventListener("click", function (event) {
    var target = event.target;
    if (target && target.closest && target.closest("[data-print]")) {
      window.print();
    }
  });

  // A confirmation form is sent once, even on a double click (the server's idempotency key
  // makes a second send harmless too).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form || !form.matches || !form.matches("form[data-submit-once]")) {
      return;
    }
    if (form.dataset.sent === "yes") {
      event.preventDefault();
      return;
    }
    form.dataset.sent = "yes";
  });

  // Move focus to the error summary, so screen readers announce it and keyboards start there.
  function focusSummary() {
    var summary = document.querySelector("[data-focus-on-load]");
    if (summary) {
      summary.focus();
    }
  }

  // A file input marked with data-choose shows our own button and the chosen names, in the
  // page's language: the browser's own ("Choose Files", "No file chosen") speaks the browser's.
  // The input stays in the form (and is what the label and a form post use), only out of sight.
  function filePicker(input) {
    var button = document.createElement("button");
    var names = document.createElement("span");
    var none = input.getAttribute("data-none") || "";
    var separator = (document.documentElement.lang || "").indexOf("zh") === 0 ? "、" : ", ";
    button.type = "button";
    button.className = "file-button";
    button.textContent = input.getAttribute("data-choose");
    names.className = "file-names";
    names.id = input.id + "-names";
    names.textContent = none;
    var label = document.querySelector('label[for="' + input.id + '"]');
    if (label) {
      button.setAttribute("aria-label", label.textContent.replace(/[\s*]+$/, "") + " · " + button.textContent);
    }
    button.setAttribute("aria-describedby", names.id);
    input.classList.add("file-hidden");
    input.tabIndex = -1;
    input.insertAdjacentElement("afterend", names);
    input.insertAdjacentElement("afterend", button);
    button.addEventListener("click", function () { input.click(); });
    input.addEventListener("change", function () {
      var chosen = Array.prototype.map.call(input.files || [], function (file) { return file.name; });
      names.textContent = chosen.length ? chosen.join(separator) : none;
    });
  }

  // At phone width the main menu collapses behind a 菜单 button (without script it stays open).
  function collapsibleMenu() {
    var nav = document.querySelector(".site-nav[data-collapsible]");
    var button = document.querySelector("button.nav-toggle");
    if (!nav || !button) {
      return;
    }
    nav.classList.add("collapsed");
    button.hidden = false;
    button.addEventListener("click", function () {
      var open = nav.classList.toggle("collapsed") === false;
      button.setAttribute("aria-expanded", open ? "true" : "false");
    });
  }

  function ready() {
    focusSummary();
    collapsibleMenu();
    Array.prototype.forEach.call(document.querySelectorAll("input[type=file][data-choose]"), filePicker);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", ready);
  } else {
    ready();
  }
})();
