// storywatch review page: keyboard shortcuts, progressive. Everything works without this file:
// each item has ordinary POST forms. Served from the binary as /static/app.js (the CSP allows
// scripts from 'self' only, never inline).
//   j / k   next / previous item
//   r / x   mark the selected item relevant / irrelevant (then move to the next one)
//   u       undo the selected item's mark (and stay on it)
//   o       open the selected item's link
//   /       focus the search box
(function () {
  "use strict";
  var items = Array.prototype.slice.call(document.querySelectorAll("article.item"));
  if (items.length === 0) { return; }
  var current = 0;
  var fromHash = location.hash ? document.getElementById(location.hash.slice(1)) : null;
  if (fromHash && items.indexOf(fromHash) >= 0) { current = items.indexOf(fromHash); }

  function select(index) {
    if (index < 0 || index >= items.length) { return; }
    items[current].classList.remove("selected");
    current = index;
    items[current].classList.add("selected");
    items[current].scrollIntoView({ block: "nearest" });
  }

  function submit(state) {
    var item = items[current];
    var form = item.querySelector("form.mark-" + state);
    if (!form) { return; }
    // Come back to the next item so review goes on where it left off; an undo stays put.
    var next = state === "unreviewed" ? item : (items[current + 1] || item);
    var back = form.querySelector("input[name=back]");
    if (back) { back.value = back.value.split("#")[0] + "#" + next.id; }
    form.submit();
  }

  items[current].classList.add("selected");
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    var tag = event.target && event.target.tagName;
    if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT") { return; }
    switch (event.key) {
      case "j": select(current + 1); break;
      case "k": select(current - 1); break;
      case "r": submit("relevant"); break;
      case "x": submit("irrelevant"); break;
      case "u": submit("unreviewed"); break;
      case "o":
        var link = items[current].querySelector("a.headline");
        if (link) { window.open(link.href, "_blank", "noopener,noreferrer"); }
        break;
      case "/":
        var search = document.getElementById("q");
        if (search) { search.focus(); }
        break;
      default: return;
    }
    event.preventDefault();
  });
})();
