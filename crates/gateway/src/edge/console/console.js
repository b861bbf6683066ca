// Progressive enhancement only: the console works without JavaScript.
document.querySelectorAll('button[data-copy]').forEach(function (button) {
  button.hidden = false;
  button.addEventListener('click', function () {
    var field = document.getElementById(button.getAttribute('data-copy'));
    if (!field) { return; }
    field.select();
    var done = function () { button.textContent = 'Copied'; };
    if (navigator.clipboard) { navigator.clipboard.writeText(field.value).then(done, done); }
    else { document.execCommand('copy'); done(); }
  });
});
