// OHIF Viewer (ohif/app, v3) configuration for docker-compose.yml: one DICOMweb data source, this
// server at http://localhost:8000/v2. The viewer runs on its own origin (http://localhost:3000),
// so the server must allow it: DICOM_CORS_ALLOWED_ORIGINS (set in docker-compose.yml).
// Behind another host name, change the three URLs here and DICOM_CORS_ALLOWED_ORIGINS together.
window.config = {
  routerBasename: '/',
  showStudyList: true,
  extensions: [],
  modes: [],
  dataSources: [
    {
      namespace: '@ohif/extension-default.dataSourcesModule.dicomweb',
      sourceName: 'dicomweb',
      configuration: {
        friendlyName: 'dicomsvc',
        name: 'dicomsvc',
        qidoRoot: 'http://localhost:8000/v2',
        wadoRoot: 'http://localhost:8000/v2',
        wadoUriRoot: 'http://localhost:8000/v2/wado',
        qidoSupportsIncludeField: true,
        supportsFuzzyMatching: true,
        supportsWildcard: true,
        imageRendering: 'wadors',
        thumbnailRendering: 'wadors',
        enableStudyLazyLoad: true,
        staticWado: false,
      },
    },
  ],
  defaultDataSourceName: 'dicomweb',
};
