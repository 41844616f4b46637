// Copy buttons: data-copy names the element whose text is copied.
document.addEventListener('click', function (e) {
  var button = e.target.closest('button[data-copy]');
  if (!button) return;
  var text = document.getElementById(button.dataset.copy).textContent.trim();
  var done = function () {
    button.textContent = 'Copied';
    setTimeout(function () { button.textContent = 'Copy'; }, 1500);
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done);
  } else {
    var range = document.createRange();
    range.selectNodeContents(document.getElementById(button.dataset.copy));
    var sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
    document.execCommand('copy');
    done();
  }
});
