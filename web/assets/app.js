// Copy buttons: data-copy names the element whose text is copied. Where the
// clipboard API is refused, the text is selected and copied the old way.
document.addEventListener('click', function (e) {
  var button = e.target.closest('button[data-copy]');
  if (!button) return;
  var source = document.getElementById(button.dataset.copy);
  var done = function () {
    button.textContent = 'Copied';
    setTimeout(function () { button.textContent = 'Copy'; }, 1500);
  };
  var fallback = function () {
    var range = document.createRange();
    range.selectNodeContents(source);
    var sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
    try { document.execCommand('copy'); } catch (err) { /* the text stays selected */ }
    done();
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(source.textContent.trim()).then(done, fallback);
  } else {
    fallback();
  }
});
